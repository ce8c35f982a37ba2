"""What the operator sees: text, status, explain, the HTML report, schedules, help."""

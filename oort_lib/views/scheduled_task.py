"""`oort-sync schedule --windows`: a Windows Task Scheduler task running oort-sync every
5 minutes, as the XML that `schtasks /Create /XML` imports.

The action is pythonw.exe (the windowless Python beside this interpreter) running
`-m oort_lib run -q`: no console window flashes up every 5 minutes, and oort_lib/__main__.py
sends what the run prints to console.log beside the log file. The task runs only while the
user is logged on (no password is stored); running it logged off is the user's choice, with
/RU and /RP at install time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from xml.sax.saxutils import escape

from oort_lib.views.scheduling import EVERY_MINUTES, HOME_SETTING, plain

TASK_NAME = "oort-sync"
TASK_FILE = "oort-sync-task.xml"
NAMESPACE = "http://schemas.microsoft.com/windows/2004/02/mit/task"
INSTALL = f"schtasks /Create /TN {TASK_NAME} /XML {TASK_FILE} /F"


def action(home: str | None, program: str | None = None) -> tuple[str, list[str]]:
    """(program, arguments) of the task: pythonw.exe and `-m oort_lib run -q [--home=DIR]`.
    ``program`` replaces this installation's pythonw.exe (contrib/'s example names one).
    Raises ConfigError (scheduling.plain) for a path that the task cannot hold."""
    # pythonw.exe sits beside python.exe in every Windows install and virtualenv (pipx's
    # included); a console script (oort-sync.exe) would open a console window each tick.
    program = program or os.path.join(os.path.dirname(os.path.abspath(sys.executable)),
                                      "pythonw.exe")
    plain(program, "the path of this Python (pythonw.exe)")
    arguments = ["-m", "oort_lib", "run", "-q"]
    if home:
        plain(home, HOME_SETTING)
        home = plain(str(Path(home).expanduser().absolute()), HOME_SETTING)
        arguments.append(f"--home={home}")
    return program, arguments


def task_xml(home: str | None, program: str | None = None) -> str:
    """The task definition (Task Scheduler schema 1.2, what Windows 7 and later import).

    Raises ConfigError (scheduling.plain) for a path that the task cannot hold."""
    program, arguments = action(home, program)
    # list2cmdline quotes the way the C runtime of pythonw.exe will split the line again.
    args = subprocess.list2cmdline(arguments)
    return f"""\
<?xml version="1.0" encoding="UTF-8"?>
<!--
  oort-sync: one batch run every {EVERY_MINUTES} minutes, while you are logged on.
  Save this text as {TASK_FILE} in UTF-8 (the output option of `oort-sync schedule`
  writes it so, in every shell), then in cmd.exe or PowerShell:
    {INSTALL}
  To run it also when you are logged off (Windows asks for your password), in cmd.exe:
    {INSTALL} /RU %USERNAME% /RP
  in PowerShell:
    {INSTALL} /RU $env:USERNAME /RP
  Last result: schtasks /Query /TN {TASK_NAME} /V /FO LIST ("Last Result": 0 is success,
  1 means some files failed, 75 that the previous run was still going).
  What the last run printed: console.log beside oort-sync.log (oort-sync logs shows the log).
-->
<Task version="1.2" xmlns="{NAMESPACE}">
  <RegistrationInfo>
    <Description>oort-sync: upload new FITS/XISF files to Arcsecond.io (one batch run)</Description>
    <URI>\\{TASK_NAME}</URI>
  </RegistrationInfo>
  <Triggers>
    <TimeTrigger>
      <Repetition>
        <Interval>PT{EVERY_MINUTES}M</Interval>
        <StopAtDurationEnd>false</StopAtDurationEnd>
      </Repetition>
      <StartBoundary>2025-01-01T00:00:00</StartBoundary>
      <Enabled>true</Enabled>
      <RandomDelay>PT30S</RandomDelay>
    </TimeTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <LogonType>InteractiveToken</LogonType>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <AllowHardTerminate>true</AllowHardTerminate>
    <StartWhenAvailable>true</StartWhenAvailable>
    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>
    <IdleSettings>
      <StopOnIdleEnd>false</StopOnIdleEnd>
      <RestartOnIdle>false</RestartOnIdle>
    </IdleSettings>
    <AllowStartOnDemand>true</AllowStartOnDemand>
    <Enabled>true</Enabled>
    <Hidden>false</Hidden>
    <RunOnlyIfIdle>false</RunOnlyIfIdle>
    <WakeToRun>false</WakeToRun>
    <ExecutionTimeLimit>PT6H</ExecutionTimeLimit>
    <Priority>7</Priority>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{escape(program)}</Command>
      <Arguments>{escape(args)}</Arguments>
    </Exec>
  </Actions>
</Task>
"""

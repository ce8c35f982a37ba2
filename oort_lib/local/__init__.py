"""What is on disk: the walk, FITS and XISF headers, dates, the Oort rules, hashes."""

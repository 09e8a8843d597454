import os
import sys

from .cli import main

try:
    rc = main()
    sys.stdout.flush()
except BrokenPipeError:  # e.g. `... status | head -1`
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    rc = 1
sys.exit(rc)

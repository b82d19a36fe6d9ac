import signal

from scripts.deploy import main
from templates.errors import run


def terminated(signum, frame):
    raise KeyboardInterrupt  # a CI cancel or `kill` ends the run like Ctrl-C: the lock is freed, the stack left as it is


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, terminated)
    run(main)

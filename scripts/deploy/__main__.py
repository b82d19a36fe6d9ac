import signal

from scripts.deploy import main
from templates.errors import run


def terminated(signum, frame):
    # A CI cancel or `kill` (SIGTERM), or a closed terminal or dropped SSH session (SIGHUP), ends the
    # run like Ctrl-C: the lock is freed, the stack left as it is.
    raise KeyboardInterrupt


if __name__ == "__main__":
    for number in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(number) is not signal.SIG_IGN:  # under nohup, SIGHUP stays ignored
            signal.signal(number, terminated)
    run(main, reader_gone_ends=False)  # main's Output: a closed reader does not stop a deploy half way

from scripts.deploy import main
from templates.errors import run

if __name__ == "__main__":
    run(main, reader_gone_ends=False)  # main's Output: a closed reader does not stop a deploy half way

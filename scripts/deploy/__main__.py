from scripts.deploy import main
from templates.errors import run

if __name__ == "__main__":
    run(main)

from scripts.review import main
from templates.errors import run

if __name__ == "__main__":
    run(main)

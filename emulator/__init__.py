"""The local AWS emulator: moto's server (sandbox.py) with the fixes that make it answer like
CloudFormation where this project relies on it (moto_compat.py). Never used against real AWS."""

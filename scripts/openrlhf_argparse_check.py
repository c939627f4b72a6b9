#!/usr/bin/env python3
"""Parse the command lines of an `rlhf export --to openrlhf` folder with OpenRLHF's own argparse.

    python3 scripts/openrlhf_argparse_check.py OPENRLHF_CHECKOUT EXPORT_DIR

Each train_<stage>.sh is run with stand-in `deepspeed`, `ray` and `python3 -m` launchers that only
record the arguments they are given (after the shell has expanded and quoted them); those are then
parsed by the parser definitions of the OpenRLHF CLI module the script names (read from
OPENRLHF_CHECKOUT/openrlhf/cli/<module>.py, the release the export targets: v0.11.0), so an unknown
flag, a wrong type or a wrong count of values fails here as it would on the cluster. Nothing of
OpenRLHF is imported (no torch needed). Exit 0 when every command parses.
"""
import argparse
import datetime
import os
import re
import stat
import subprocess
import sys
import tempfile

LAUNCHERS = {
    # deepspeed [--num_gpus N] --module MODULE ARGS...
    "deepspeed": 'while [ "$1" != "--module" ]; do shift; done; shift; printf "%s\\0" "$@" > "$RECORD"',
    # ray job submit ... -- python3 -m MODULE ARGS...
    "ray": 'while [ "$1" != "--" ]; do shift; done; shift 3; printf "%s\\0" "$@" > "$RECORD"',
    # python3 -m openrlhf.cli.lora_combiner ARGS... (anything else: the real python3)
    "python3": 'if [ "$1" = "-m" ]; then shift; printf "%s\\0" "$@" > "$RECORD.combiner"; exit 0; fi; exec "$REAL_PYTHON" "$@"',
}


def parser_of(cli_dir, module):
    """The ArgumentParser a module's __main__ block builds (its helper functions included), without importing it."""
    text = open(os.path.join(cli_dir, module + ".py"), encoding="utf-8").read()
    start = text.index("parser = argparse.ArgumentParser(")
    end = text.rindex("\n", start, text.index("parser.parse_args()", start))
    ns = {"argparse": argparse, "datetime": datetime.datetime}
    for helper in re.finditer(r"^def \w+\(parser.*?(?=^\S)", text, re.M | re.S):
        exec(helper.group(0), ns)  # e.g. the --{prefix}.adam.* optimizer flags of train_ppo_ray
    exec(re.sub(r"^    ", "", text[start:end], flags=re.M), ns)
    return ns["parser"]


def recorded(path):
    parts = open(path, "rb").read().split(b"\0")[:-1]
    return [p.decode() for p in parts]


def main():
    cli_dir = os.path.join(sys.argv[1], "openrlhf", "cli")
    export_dir = sys.argv[2]
    failures = 0
    with tempfile.TemporaryDirectory() as bin_dir:
        for name, body in LAUNCHERS.items():
            path = os.path.join(bin_dir, name)
            with open(path, "w") as f:
                f.write("#!/usr/bin/env bash\n" + body + "\n")
            os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
        record = os.path.join(bin_dir, "record")
        env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"], RECORD=record, REAL_PYTHON=sys.executable)
        for root, _, files in sorted(os.walk(export_dir)):
            for script in sorted(f for f in files if re.fullmatch(r"train_\w+\.sh", f)):
                path = os.path.join(root, script)
                for stale in (record, record + ".combiner"):
                    if os.path.exists(stale):
                        os.remove(stale)
                run = subprocess.run(["bash", path], env=env, capture_output=True, text=True)
                if run.returncode != 0:
                    print(f"{path}: not run: {run.stderr.strip()[:200]}")
                    continue
                for rec in (record, record + ".combiner"):
                    if not os.path.exists(rec):
                        continue
                    module, *args = recorded(rec)
                    module = module.split(".")[-1]
                    try:
                        parser_of(cli_dir, module).parse_args(args)
                        print(f"{path}: {module}: {len(args)} arguments parse")
                    except SystemExit:
                        failures += 1
                        print(f"{path}: {module}: does NOT parse")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

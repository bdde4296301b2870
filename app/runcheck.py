"""The run checks over a whole run log, in a process of their own: `python -m app.runcheck RUN_DIR` prints the
findings (a JSON list of dicts). The dashboard runs it for a long run (app.longrun), so the full data the
checks read is never held by the server. No streamlit, no torch."""
import json
import sys

from probes.detectors import RunData, check_run
from probes.runlog import RunReader


def main(path: str) -> None:
    with RunReader(path) as reader:
        found = check_run(RunData.from_reader(reader))
    print(json.dumps([f.to_dict() for f in found]))


if __name__ == "__main__":
    main(sys.argv[1])

"""Write one Markdown page per job magic to docs/magics/<magic>.md.

Each page is built from the magic's own help (the text IPython's
``magic_arguments`` generates from the argument parser, what ``%start_job?``
shows) plus a few hand-written examples kept below in ``EXAMPLES``.

    .venv/bin/python docs/gen_magic_docs.py           # (re)write the pages
    .venv/bin/python docs/gen_magic_docs.py --check   # exit 1 if a page is stale

The output is deterministic: the help is rendered at a fixed width, so the
terminal the generator (or the test) runs in does not change the pages.
"""
from __future__ import annotations

import argparse
import copy
import pathlib
import sys

DOCS_DIR = pathlib.Path(__file__).resolve().parent
MAGICS_DIR = DOCS_DIR / "magics"

#: Width the help is wrapped at: what argparse uses on an 80-column (or non-tty) terminal.
HELP_WIDTH = 78

#: Hand-written examples: (what it shows, the lines typed in a notebook cell).
EXAMPLES = {
    "start_job": [
        ("A process job (`BackgroundJob`, the default). `data` is a notebook variable: "
         "the job gets a copy of it.",
         "job = %start_job sum(x * x for x in data)"),
        ("A thread job with a name; it sees the notebook's own objects, not copies.",
         "%start_job --thread --name fetch [len(page) for page in pages]"),
        ("A whole cell as a job: flags go on the `%%start_job` line, the code is the cell. "
         "`emit` adds objects to the output, the last expression is output too.",
         "%%start_job --name report\n"
         "from jobmagics import emit, progress\n"
         "for i, chunk in enumerate(chunks):\n"
         "    emit(summarize(chunk))\n"
         "    progress(current=i + 1, total=len(chunks))\n"
         "len(chunks)"),
        ("Send exactly the variables you name, and run set-up code first "
         "(quote a value that contains spaces).",
         '%start_job --using X,y --init "import numpy as np" np.linalg.lstsq(X, y, rcond=None)[0]'),
        ("Send no notebook variables at all; `--` ends the flags when the code itself starts with `-`.",
         "%start_job --no-capture import os; os.cpu_count()\n"
         "%start_job -- -1 * 2"),
        ("One child job per item (`ForEach-Object -Parallel -AsJob`): the item is `_` in the code, at most "
         "4 children run at once; receiving the parent gives their outputs in item order.",
         "%start_job --foreach data --throttle-limit 4 --name squares _ * _"),
    ],
    "get_job": [
        ("Every job of this kernel, as a table.", "%get_job"),
        ("Jobs by id, by name, by name pattern, or through a variable holding a job.",
         "%get_job 1 report\n%get_job Job*\n%get_job $job"),
        ("Filters, as with Get-Job's parameters.",
         "%get_job --state Failed\n%get_job --type ThreadJob --has-more-data"),
        ("The value is a list of `Job` objects.",
         "failed = %get_job --state Failed\n[(j.name, j.reason) for j in failed]"),
    ],
    "receive_job": [
        ("Take what the job produced: its printed text appears in the cell, its output "
         "objects are the value. A second receive gives only what is new (here: nothing, `None`).",
         "result = %receive_job report\n%receive_job report"),
        ("Look without consuming.", "%receive_job --keep report"),
        ("Stream until the job finishes, then forget it.",
         "%receive_job --wait --auto-remove report"),
        ("Several jobs: each job's data in turn; the objects of all of them are the value.",
         "results = %receive_job Job*"),
    ],
    "wait_job": [
        ("Block until the named jobs (or, with no job named, every job) have finished.",
         "%wait_job report fetch\n%wait_job"),
        ("Return as soon as one of them has finished.", "%wait_job --any report fetch"),
        ("Give up after 10 seconds: no error, the value lists the jobs that did finish "
         "(possibly none).",
         "done = %wait_job --timeout 10 report"),
    ],
    "stop_job": [
        ("Stop one job, or every job whose name matches a pattern.",
         "%stop_job report\n%stop_job fetch*"),
        ("The job is `Stopped` afterwards (or kept its final state if it had already finished); "
         "what it produced before stopping can still be received.",
         "%stop_job 3\n%receive_job 3"),
    ],
    "remove_job": [
        ("Forget a finished job and the data it still holds.", "%remove_job report"),
        ("Forget every job in a state.", "%remove_job --state Completed"),
        ("A running job is refused unless `--force`, which stops it first.",
         "%remove_job --force fetch"),
    ],
    "new_session": [
        ("One session on a computer named in `~/.ssh/config` (or any host name).",
         "s = %new_session --computer web1"),
        ("One session per computer, with a user and a Python of your choice.",
         "%new_session --computer web1 web2 --user deploy --python /usr/bin/python3 --name web"),
        ("A computer you have never connected to: accept its host key once (a changed key is always refused).",
         "%new_session --computer newbox --accept-new-host-key"),
        ("A session on a Dask cluster (`jobmagics[dask]`): its scheduler's address or scheduler file, or "
         "`local` for a LocalCluster the session owns ([cluster sessions](../cluster.md)).",
         "c = %new_session --cluster local --name dask\n%start_job --session dask --foreach data _ ** 2"),
    ],
    "get_session": [
        ("This kernel's sessions as a table.", "%get_session"),
        ("One session by name.", "%get_session web-1"),
        ("Your sessions on a computer that no kernel here is connected to, reached with the same "
         "connection flags as `%new_session`.",
         "%get_session --computer 10.0.0.5 --user deploy --port 2222 --python /opt/py/bin/python3"),
    ],
    "remove_session": [
        ("Close sessions; their jobs are stopped and their agents end.", "%remove_session web-1 web-2"),
    ],
    "invoke": [
        ("Run code in an open session; its output streams into the cell and the value comes back.",
         "%invoke --session web-1 import platform; platform.node()"),
        ("A whole cell on two computers through temporary sessions; each line says where it came from.",
         "%%invoke --computer web1 web2\nimport os\nprint(os.getloadavg())"),
        ("As a job, at most 8 computers at once: one child job per computer.",
         "job = %invoke --computer $hosts --as-job --throttle-limit 8 collect_logs()"),
    ],
    "enter_session": [
        ("Work on the remote computer cell by cell; variables live there between cells.",
         "%enter_session web-1"),
        ("While entered, job magics act on the session's registry (the job's location is `localhost` there).",
         "%start_job --name scan run_scan()"),
    ],
    "exit_session": [
        ("Back to the kernel; the session stays open, with its variables and jobs.", "%exit_session"),
    ],
    "disconnect_session": [
        ("Start work in a detached session, then leave it running without this kernel.",
         "s = %new_session --local --name nightly\n%invoke --session nightly --as-job long_run()\n"
         "%disconnect_session nightly"),
    ],
    "connect_session": [
        ("Come back to it later (from this kernel): the jobs carry on here.", "%connect_session nightly"),
    ],
    "receive_session": [
        ("From a new kernel: find it, take the work back as a job, receive what it did meanwhile.",
         "%get_session --local\njob = %receive_session nightly --job-name nightly-run\n%receive_job $job --wait"),
    ],
}

HEADER = ("<!-- Generated by docs/gen_magic_docs.py from the magic's own help text. "
          "Do not edit: change the magic or the generator, then run the generator. -->")


def magic_names():
    from jobmagics.ipython.magics import MAGIC_NAMES

    return list(MAGIC_NAMES)


def help_text(name):
    """The magic's help, as IPython builds its docstring, rendered at :data:`HELP_WIDTH` columns.

    IPython stores ``parser.format_help()`` as the magic's ``__doc__`` when the
    module is imported, wrapped to the terminal of that moment; rendering the
    same parser at a fixed width gives the same text independent of it.
    """
    from jobmagics.ipython.magics import JobMagics

    magic = getattr(JobMagics, name)
    parser = copy.copy(magic.parser)  # a shallow copy: the magic's own parser stays as it is
    formatter_class = parser.formatter_class
    parser.formatter_class = lambda prog, **kw: formatter_class(prog, width=HELP_WIDTH, **kw)
    return parser.format_help()


def _help_block(text):
    """The help without IPython's reST ``::`` marker, the usage lines moved to the margin."""
    lines = text.rstrip().splitlines()
    while lines and lines[0].strip() in ("::", ""):
        lines.pop(0)
    out, in_usage = [], True
    for line in lines:
        if in_usage and not line.strip():
            in_usage = False
        out.append(line[2:] if in_usage and line.startswith("  ") else line)
    return "\n".join(out)


def _summary(text):
    """The first sentence-line of the magic's description (the line after the usage)."""
    block = _help_block(text).split("\n\n")
    return " ".join(block[1].split()) if len(block) > 1 else ""


def render(name):
    """The Markdown page for one magic."""
    text = help_text(name)
    parts = [
        HEADER,
        "",
        "# `%%%s`" % name,
        "",
        _summary(text),
        "",
        "See also: [the magic line](../magic-line.md), [the job model](../jobs.md), "
        "[PowerShell mapping](../powershell.md), "
        "[all magics](../index.md#magics).",
        "",
        "## Help",
        "",
        "The magic's own help, as `%%%s?` shows it (here wrapped at 80 columns)." % name,
        "",
        "```text",
        _help_block(text),
        "```",
        "",
        "## Examples",
        "",
    ]
    for caption, code in EXAMPLES[name]:
        parts += [caption, "", "```python", code, "```", ""]
    return "\n".join(parts).rstrip("\n") + "\n"


def pages():
    """{path: text} for every page the generator writes."""
    names = magic_names()
    missing = [n for n in names if n not in EXAMPLES]
    if missing:
        raise SystemExit("gen_magic_docs.py has no examples for: %s" % ", ".join(missing))
    return {MAGICS_DIR / ("%s.md" % name): render(name) for name in names}


def _relative(path):
    try:
        return path.relative_to(DOCS_DIR.parent).as_posix()
    except ValueError:
        return str(path)


def check():
    """Problems with the pages on disk, one line each; empty when they are what would be written."""
    expected = pages()
    problems = []
    for path, text in expected.items():
        if not path.exists():
            problems.append("%s is missing" % _relative(path))
        elif path.read_text(encoding="utf-8") != text:
            problems.append("%s differs from what the generator writes" % _relative(path))
    if MAGICS_DIR.is_dir():
        for path in sorted(MAGICS_DIR.glob("*.md")):
            if path not in expected:
                problems.append("%s is not a page of any magic" % _relative(path))
    return problems


def write():
    """Write every page (and delete pages of magics that no longer exist); the paths changed."""
    MAGICS_DIR.mkdir(parents=True, exist_ok=True)
    expected = pages()
    changed = []
    for path, text in expected.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8", newline="\n")
            changed.append(path)
    for path in sorted(MAGICS_DIR.glob("*.md")):
        if path not in expected:
            path.unlink()
            changed.append(path)
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 and name the pages that are not up to date")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for line in problems:
            print(line)
        if problems:
            print("run: .venv/bin/python docs/gen_magic_docs.py")
            return 1
        return 0
    for path in write():
        print("wrote %s" % _relative(path) if path.exists() else "removed %s" % _relative(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())

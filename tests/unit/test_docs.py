"""The documentation stays true: README.md and docs/*.md are checked against the repository.

- every relative link resolves to a file, and its ``#anchor`` to a heading of that file
  (GitHub's slugs);
- every command in a ``bash``/``sh``/``console`` block, and every inline code span that is a
  command (``make X``, ``python -m X``, ``.venv/bin/X``, a console script), names a real
  Makefile target, a console script declared in setup.cfg, a module of this repository (or an
  installed one), and only flags that the program's own ``--help`` lists (for a
  ``benchmarks/`` script: flags its source defines); ``pytest -m`` names declared markers;
- every fenced block names its language, so that no command escapes these checks;
- every repository path a command or an inline code span names exists;
- every ``SIDECAR_*`` variable the docs name is one the code reads, and every settings table
  (the README's, the topic pages') shows the defaults of the Settings class.

Each failure is reported as ``file:line: what is wrong``, all of them at once.
"""

from __future__ import annotations

import configparser
import dataclasses
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: the console scripts the docs talk about; each one they name must be declared in setup.cfg
KNOWN_SCRIPTS = {
    "sidecar-setup",
    "ingest",
    "opensearch-node",
    "eval-search",
    "sidecar-serve",
    "sidecar-demo",
}
#: top-level packages of this repository (the layout the docs describe): ``python -m`` of one
#: of these must resolve to a file here, and a path that starts with one must exist
REPO_PACKAGES = {
    "sidecar",
    "ingest",
    "cluster_setup",
    "local_node",
    "stack",
    "evaluation",
    "benchmarks",
    "tests",
}
REPO_DIRS = REPO_PACKAGES | {"index_templates", "docs", ".ci"}
REPO_FILES = {
    "Makefile",
    "setup.cfg",
    "pyproject.toml",
    "Dockerfile",
    "docker-compose.yml",
    "README.md",
}
#: modules run with ``python -m`` that belong to other tools (not installed here, or not ours)
OTHER_MODULES = {"vllm", "pip", "venv", "ensurepip", "http", "gunicorn", "pytest"}
PYTHONS = {"python", "python3", "python3.11", "$(PY)"}
COMMAND_LANGS = {"bash", "sh", "shell", "console"}
SEPARATORS = {"|", "||", "&&", ";", "&"}
HELP_TIMEOUT_S = 20


# --- reading the markdown ---------------------------------------------------------------


@dataclass
class Doc:
    path: Path
    lines: list[str]
    fences: list[tuple[str, int, list[str]]]  # (language, line of the opening fence, body)
    prose: list[tuple[int, str]]  # (first line, paragraph text) outside fences

    @property
    def name(self) -> str:
        return str(self.path.relative_to(ROOT))


@cache
def read(path: Path) -> Doc:
    lines = path.read_text(encoding="utf-8").splitlines()
    fences: list[tuple[str, int, list[str]]] = []
    prose: list[tuple[int, str]] = []
    para: list[str] = []
    para_start = 0
    fence: tuple[str, str, int, list[str]] | None = None  # (marker, language, line, body)
    for no, line in enumerate(lines, 1):
        if fence is not None:
            if line.strip().startswith(fence[0]) and not line.strip().strip(fence[0][0]):
                fences.append((fence[1], fence[2], fence[3]))
                fence = None
            else:
                fence[3].append(line)
            continue
        m = re.match(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)", line)
        if m:
            if para:
                prose.append((para_start, "\n".join(para)))
                para = []
            fence = (m.group(1), m.group(2).lower(), no, [])
            continue
        if line.strip():
            if not para:
                para_start = no
            para.append(line)
        elif para:
            prose.append((para_start, "\n".join(para)))
            para = []
    if para:
        prose.append((para_start, "\n".join(para)))
    if fence is not None:
        fences.append((fence[1], fence[2], fence[3]))
    return Doc(path, lines, fences, prose)


def code_spans(doc: Doc) -> Iterator[tuple[int, str]]:
    """Inline code spans outside fenced blocks, with the line each starts on."""
    for start, text in doc.prose:
        for m in re.finditer(r"(`+)(.+?)(?<!`)\1(?!`)", text, re.S):
            yield start + text.count("\n", 0, m.start()), m.group(2).strip()


def without_code(text: str) -> str:
    return re.sub(r"(`+).+?(?<!`)\1(?!`)", lambda m: " " * len(m.group(0)), text, flags=re.S)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lowercased, punctuation dropped, spaces -> -."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images -> text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # \w keeps letters and digits of any script, and _
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    doc = read(path)
    fenced = {no for _, start, body in doc.fences for no in range(start, start + len(body) + 2)}
    seen: dict[str, int] = {}
    found: set[str] = set()
    for no, line in enumerate(doc.lines, 1):
        if no in fenced:
            continue
        m = re.match(r"^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
        found.update(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", line))
    return frozenset(found)


#: [text](target "title") and ![alt](target), the text allowed one level of brackets
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def links(doc: Doc) -> Iterator[tuple[int, str]]:
    for start, text in doc.prose:
        plain = without_code(text)
        for m in INLINE_LINK.finditer(plain):
            yield start + plain.count("\n", 0, m.start()), m.group(1)
        for m in re.finditer(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", plain, re.M):
            yield start + plain.count("\n", 0, m.start()), m.group(1)


# --- what the repository declares -------------------------------------------------------


@cache
def make_targets() -> frozenset[str]:
    targets: set[str] = set()
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9_.%/ -]+?)\s*::?(?!=)", line)
        if m and not line.startswith("\t"):
            targets.update(t for t in m.group(1).split() if not t.startswith("."))
    return frozenset(targets)


@cache
def console_scripts() -> dict[str, str]:
    """Script name -> ``module:function``, from setup.cfg [options.entry_points]."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    raw = cfg.get("options.entry_points", "console_scripts", fallback="")
    scripts = {}
    for line in raw.splitlines():
        if "=" in line:
            name, target = (x.strip() for x in line.split("=", 1))
            scripts[name] = target
    return scripts


@cache
def pytest_markers() -> frozenset[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    markers = data["tool"]["pytest"]["ini_options"].get("markers", [])
    return frozenset(m.split(":")[0].strip() for m in markers)


def repo_module(module: str) -> Path | None:
    """The file ``python -m module`` runs from this repository, if there is one."""
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__main__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_exists(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@cache
def help_text(argv: tuple[str, ...]) -> tuple[int, str]:
    """``argv --help`` run from the repository root (this checkout first on the path)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    try:
        proc = subprocess.run(
            [*argv, "--help"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=HELP_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return -1, f"no answer to --help within {HELP_TIMEOUT_S} s"
    return proc.returncode, proc.stdout + proc.stderr


def script_argv(name: str) -> tuple[str, ...]:
    module, _, func = console_scripts()[name].partition(":")
    code = (
        f"import sys; sys.argv[0] = {name!r}; from {module} import {func or 'main'} as main; "
        "sys.exit(main())"
    )
    return (sys.executable, "-c", code)


# --- the commands the docs show ---------------------------------------------------------


@dataclass
class Command:
    where: str  # file:line
    words: list[str]


def split_line(line: str) -> list[list[str]]:
    """One shell line -> its simple commands (split at pipes, &&, ;), comments dropped."""
    line = re.sub(r"(^|\s)#.*$", "", line)
    try:
        lex = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lex.whitespace_split = True
        lex.commenters = ""
        tokens = list(lex)
    except ValueError:
        tokens = line.split()
    commands: list[list[str]] = []
    current: list[str] = []
    for token in tokens:
        if token in SEPARATORS:
            commands.append(current)
            current = []
        else:
            current.append(token)
    commands.append(current)
    return [c for c in commands if c]


def program_of(words: list[str]) -> tuple[str, list[str]]:
    """The program a simple command runs (variable assignments, sudo, .venv/bin/ dropped)."""
    while words and (
        re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]) or words[0] in {"sudo", "env", "time"}
    ):
        words = words[1:]
    if not words:
        return "", []
    program = words[0]
    if re.match(r"^(\./)?(\.venv|\$\(VENV\))/bin/", program):
        program = program.rsplit("/", 1)[1]
    return program, words[1:]


def commands(doc: Doc) -> Iterator[Command]:
    for lang, start, body in doc.fences:
        if lang not in COMMAND_LANGS:
            continue
        logical: list[tuple[int, str]] = []
        pending, pending_no = "", 0
        for offset, line in enumerate(body, 1):
            if lang == "console":
                if not line.startswith("$ ") and not pending:
                    continue
                line = line[2:] if line.startswith("$ ") else line
            if not pending:
                pending_no = start + offset
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            logical.append((pending_no, pending + line))
            pending = ""
        if pending:
            logical.append((pending_no, pending))
        for no, line in logical:
            for words in split_line(line):
                yield Command(f"{doc.name}:{no}", words)
    for no, span in code_spans(doc):
        first = span.split()[0] if span.split() else ""
        program, _ = program_of(span.split())
        if program in {"make", "pytest"} | PYTHONS | KNOWN_SCRIPTS | set(
            console_scripts()
        ) or first.startswith((".venv/bin/", "$(VENV)/bin/")):
            for words in split_line(span):
                yield Command(f"{doc.name}:{no}", words)


def flags(words: list[str]) -> list[str]:
    found = []
    for word in words:
        found += re.findall(r"(?<![\w-])(--[A-Za-z0-9][\w-]*)", word)
    return found


def repo_path_problem(token: str) -> str | None:
    """A token that looks like a path of this repository, and does not exist."""
    token = token.strip("[]()<>,;'\"")
    token = token.split("::", 1)[0]  # pytest node ids
    if token in REPO_FILES:
        return None if (ROOT / token).exists() else f"{token} does not exist"
    if "/" not in token or token.startswith(("/", "./", "../", "http")):
        return None
    head = token.split("/", 1)[0]
    if head not in REPO_DIRS or not re.fullmatch(r"[\w.*/-]+", token):
        return None
    if "*" in token:
        return None if list(ROOT.glob(token)) else f"{token} matches no file"
    return None if (ROOT / token).exists() else f"{token} does not exist"


def check_flags(
    where: str, label: str, argv: tuple[str, ...], args: list[str], problems: list[str]
) -> None:
    wanted = flags(args)
    if not wanted:
        return
    rc, text = help_text(argv)
    if rc != 0:
        problems.append(f"{where}: `{label} --help` fails (exit {rc}): {text.strip()[-300:]}")
        return
    positional = next((a for a in args if not a.startswith("-")), None)
    if (
        positional
        and re.fullmatch(r"[a-z][a-z0-9_-]*", positional)
        and re.search(rf"(?<![\w-]){re.escape(positional)}(?![\w-])", text)
    ):  # a subcommand (eval-search run, pool-export ...): its own flags too
        sub_rc, sub_text = help_text((*argv, positional))
        if sub_rc == 0:
            text += sub_text
    for flag in wanted:
        if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text):
            problems.append(f"{where}: `{label}` has no flag {flag} (not in its --help)")


def check_command(cmd: Command, problems: list[str]) -> None:
    program, args = program_of(cmd.words)
    where = cmd.where
    for token in [program, *args]:
        problem = repo_path_problem(token)
        if problem:
            problems.append(f"{where}: {problem}")
    if program == "make":
        for word in args:
            if word.startswith(("-", "[", "<", "...")) or "=" in word:
                continue
            if word not in make_targets():
                problems.append(f"{where}: `make {word}`: no such target in the Makefile")
    elif program in KNOWN_SCRIPTS or program in console_scripts():
        if program not in console_scripts():
            problems.append(f"{where}: `{program}` is not a console script in setup.cfg")
        else:
            check_flags(where, program, script_argv(program), args, problems)
    elif program in PYTHONS and args[:1] == ["-m"] and len(args) > 1:
        module, rest = args[1], args[2:]
        top = module.split(".")[0]
        if top in REPO_PACKAGES:
            if repo_module(module) is None:
                problems.append(
                    f"{where}: `python -m {module}`: no {module.replace('.', '/')}.py or "
                    f"{module.replace('.', '/')}/__main__.py in this repository"
                )
            else:
                check_flags(
                    where, f"python -m {module}", (sys.executable, "-m", module), rest, problems
                )
        elif top not in OTHER_MODULES and not module_exists(module):
            problems.append(f"{where}: `python -m {module}`: no such module")
    elif program in PYTHONS and args and args[0].endswith(".py"):
        script = ROOT / args[0]
        if not script.is_file():
            problems.append(f"{where}: {args[0]} does not exist")
            return
        source = script.read_text(encoding="utf-8")
        for flag in flags(args[1:]):
            if not re.search(rf"[\"']{re.escape(flag)}[\"']", source):
                problems.append(f"{where}: {args[0]} defines no flag {flag}")
    elif program == "pytest":
        for i, word in enumerate(args):
            if word == "-m" and i + 1 < len(args):
                names = set(re.findall(r"[A-Za-z_]\w*", args[i + 1])) - {"and", "or", "not"}
                for name in sorted(names - pytest_markers()):
                    problems.append(f"{where}: pytest marker {name!r} is not declared")


# --- the tests ---------------------------------------------------------------------------


def test_docs_exist() -> None:
    assert (ROOT / "README.md").is_file()
    assert len(DOCS) > 1, "docs/*.md is empty"


def test_every_relative_link_and_anchor_resolves() -> None:
    problems = []
    for path in DOCS:
        doc = read(path)
        for no, target in links(doc):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                continue  # http:, https:, mailto:
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path
            where = f"{doc.name}:{no}"
            if not dest.exists():
                problems.append(f"{where}: link to {target}: {file_part} does not exist")
                continue
            if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                problems.append(
                    f"{where}: link to {target}: no heading #{anchor} in "
                    f"{dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}"
                )
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_every_code_block_names_its_language() -> None:
    """So that no command hides from the checks below in an unlabelled block."""
    problems = [
        f"{read(path).name}:{start}: fenced block without a language (bash, text, json, ...)"
        for path in DOCS
        for lang, start, _ in read(path).fences
        if not lang
    ]
    assert not problems, "\n".join(problems)


def test_every_documented_command_exists() -> None:
    all_commands = [cmd for path in DOCS for cmd in commands(read(path))]
    # ask every program for its --help once, in parallel (each is a fresh interpreter)
    wanted: set[tuple[str, ...]] = set()
    for cmd in all_commands:
        program, args = program_of(cmd.words)
        if flags(args) and program in console_scripts():
            wanted.add(script_argv(program))
        elif (
            program in PYTHONS
            and args[:1] == ["-m"]
            and len(args) > 1
            and flags(args)
            and repo_module(args[1])
        ):
            wanted.add((sys.executable, "-m", args[1]))
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(help_text, sorted(wanted)))
    problems: list[str] = []
    for cmd in all_commands:
        check_command(cmd, problems)
    assert not problems, "commands that do not match the repository:\n" + "\n".join(
        dict.fromkeys(problems)
    )


def test_every_repository_path_in_inline_code_exists() -> None:
    problems = []
    for path in DOCS:
        doc = read(path)
        for no, span in code_spans(doc):
            for token in span.split():
                problem = repo_path_problem(token)
                if problem:
                    problems.append(f"{doc.name}:{no}: {problem}")
    assert not problems, "paths that are not in the repository:\n" + "\n".join(problems)


def settings_defaults() -> dict[str, object]:
    """``SIDECAR_NAME`` -> default, from the Settings class (a dataclass or pydantic model)."""
    from sidecar.settings import Settings

    model_fields = getattr(Settings, "model_fields", None)
    if model_fields is not None:
        return {f"SIDECAR_{k.upper()}": v.default for k, v in model_fields.items()}
    return {f"SIDECAR_{f.name.upper()}": f.default for f in dataclasses.fields(Settings)}


@cache
def variables_in_code() -> frozenset[str]:
    found: set[str] = set()
    files = [*ROOT.glob("*.yml"), ROOT / "Dockerfile", ROOT / "Makefile"]
    for package in REPO_PACKAGES:
        files += (ROOT / package).rglob("*.py") if (ROOT / package).is_dir() else []
    for file in files:
        if file.is_file():
            found.update(
                re.findall(
                    r"(?<![A-Z0-9_])SIDECAR_[A-Z0-9_]*[A-Z0-9]",
                    file.read_text(encoding="utf-8", errors="replace"),
                )
            )
    return frozenset(found)


def test_every_documented_variable_is_read_by_the_code() -> None:
    known = set(settings_defaults()) | variables_in_code()
    problems = []
    for path in DOCS:
        doc = read(path)
        for no, line in enumerate(doc.lines, 1):
            for name in re.findall(r"(?<![A-Za-z0-9_])SIDECAR_[A-Z0-9_]*[A-Z0-9]", line):
                if name not in known:
                    problems.append(
                        f"{doc.name}:{no}: {name} is neither a setting nor read "
                        "anywhere in the code"
                    )
    assert not problems, "\n".join(problems)


def test_settings_tables_show_the_defaults() -> None:
    """Every ``| `SIDECAR_X` | default | ... |`` row (the README's table, the topic pages'
    tables) names a setting and shows its default."""
    defaults = settings_defaults()
    problems = []
    readme_rows = 0
    for path in DOCS:
        if path.name == "settings.md":
            continue  # generated from the declarations (tests/unit/test_settings_doc.py)
        doc = read(path)
        for no, line in enumerate(doc.lines, 1):
            m = re.match(r"^\| `(SIDECAR_[A-Z0-9_]+)` \| ([^|]*) \|", line)
            if not m:
                continue
            readme_rows += path.name == "README.md"
            name, shown = m.group(1), m.group(2).strip().strip("`")
            where = f"{doc.name}:{no}"
            if name not in defaults:
                problems.append(f"{where}: {name} is not a setting")
                continue
            default = defaults[name]
            if isinstance(default, bool):
                ok = shown == str(default).lower()
            elif isinstance(default, (int, float)):
                ok = _number(shown) == float(default)
            elif isinstance(default, str) and default and default != "auto":
                ok = shown == default
            else:
                ok = True  # empty or computed defaults are described in words
            if not ok:
                problems.append(f"{where}: {name} shows {shown!r}, the default is {default!r}")
    assert readme_rows, "the README has no settings table"
    assert not problems, "\n".join(problems)


def _number(text: str) -> float | None:
    try:
        return float(text.replace("_", ""))
    except ValueError:
        return None

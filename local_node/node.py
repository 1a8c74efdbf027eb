"""A real single-node OpenSearch without Docker, from Maven Central.

What it does, once per machine (cached):

1. downloads the integ-test distribution ``org.opensearch.distribution.integ-test-zip:
   opensearch:V:zip`` and the plugin zips ``org.opensearch.plugin:{opensearch-job-scheduler,
   opensearch-ml-plugin, opensearch-knn, neural-search}:V.0:zip`` with ``mvn``;
2. unpacks the distribution and assembles the modules it lacks, from their Maven jars plus a
   plugin descriptor written here: the 2.x zip ships only ``transport-*``, so
   ``lang-painless`` (k-NN extends it) and ``analysis-common`` (the language analyzers) are
   built; the 3.x zip already carries them (and ``transport-grpc``, which k-NN and
   neural-search 3.x extend), so nothing is;
3. installs the plugins in dependency order with ``opensearch-plugin install --batch``.

Then, per node: a config folder (single node, loopback, free ports, ML Commons breakers
relaxed for small machines), data and logs in a run folder, the node started as an
unprivileged user (OpenSearch refuses root), green health awaited, and a clean stop that
keeps the logs.

The Maven k-NN zip has no native faiss/nmslib libraries: map vectors with
``"engine": "lucene"``. ``plugins.security.*`` must not be set (the plugin is absent).

``--secured`` (``LocalNode(secured=True)``): a distribution of its own with the security
plugin too (``org.opensearch.plugin:opensearch-security:V.0:zip``) and its demo configuration
(``tools/install_demo_configuration.sh``): HTTPS with the demo certificates (``root-ca.pem``
in the node's config folder verifies them; they name ``localhost`` and ``127.0.0.1``) and
basic auth, user ``admin`` with ``ADMIN_PASSWORD`` (``OPENSEARCH_INITIAL_ADMIN_PASSWORD`` at
install time). Demo certificates: for tests only.

The version: ``OPENSEARCH_VERSION`` (or ``--version``), one of :data:`LINES` (3.6.0, the
default, runs on Java 21+; 2.19.1 on Java 17). A secured node runs 2.19.1 (the newest line whose
security plugin is on Maven Central: :data:`SECURED_LINES`).

Command line (used by ``make run``)::

    python -m local_node start [--name NAME] [--version V] [--secured]   # prints the URL
    python -m local_node stop [--name NAME]
    python -m local_node status [--name NAME]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import pwd
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from sidecar.launcher import free_port

#: the two OpenSearch lines the project runs on, the default first: the whole real-node suite
#: runs on the one ``OPENSEARCH_VERSION`` picks, a smoke of the end-to-end path on the other
LINES = ("3.6.0", "2.19.1")
DEFAULT_VERSION = LINES[0]
#: the lines whose security plugin (``opensearch-security:V.0``, it must match the node's
#: version exactly) is on Maven Central: 2.19.1.0 is; for 3.x only 3.4.0.0 is published (no
#: 3.6.0.0), so a secured node runs 2.19.1 whatever the default line
SECURED_LINES = ("2.19.1",)
#: Plugin artifactIds in install order (each extends the ones before it).
PLUGINS = ("opensearch-job-scheduler", "opensearch-ml-plugin", "opensearch-knn", "neural-search")
MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
NODE_USER = "opensearch"
#: the plugin ``--secured`` adds (installed last), and its demo configuration's admin
SECURITY_PLUGIN = "opensearch-security"
ADMIN_USER = "admin"
ADMIN_PASSWORD = os.environ.get("OPENSEARCH_INITIAL_ADMIN_PASSWORD", "Rk7#vQ2m!Lp9zW")
DEMO_SCRIPT = "install_demo_configuration.sh"
DEMO_BEGIN = "######## Start OpenSearch Security Demo Configuration ########"
DEMO_END = "######## End OpenSearch Security Demo Configuration ########"


@dataclass(frozen=True)
class Module:
    """A module the integ-test zip lacks, rebuilt from its Maven jar."""

    name: str
    classname: str
    description: str
    extended: str = ""
    policy: str = ""
    # dependency groups copied next to the jar (core and Lucene jars are already in lib/)
    groups: tuple[str, ...] = ("org.opensearch.plugin",)


MODULES = (
    Module(
        "lang-painless",
        "org.opensearch.painless.PainlessPlugin",
        "An easy, safe and fast scripting language for OpenSearch",
        policy=(
            "grant {\n"
            '  permission java.lang.RuntimePermission "createClassLoader";\n'
            '  permission java.lang.RuntimePermission "getClassLoader";\n'
            "};\n"
        ),
        groups=("org.opensearch.plugin", "org.antlr", "org.ow2.asm"),
    ),
    Module(
        "analysis-common",
        "org.opensearch.analysis.common.CommonAnalysisPlugin",
        'Adds "built in" analyzers to OpenSearch.',
        extended="lang-painless",
    ),
)


class NodeError(RuntimeError):
    pass


def cache_root() -> Path:
    """Where downloads and the installed distribution live, outside the work tree.

    As root the node runs as another user, who must be able to read the distribution:
    /root is private, so root's cache lives in /var/cache instead.
    """
    env = os.environ.get("RANKING_SIDECAR_CACHE")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/cache/ranking-sidecar")
    return Path.home() / ".cache" / "ranking-sidecar"


def run_root() -> Path:
    """Where nodes keep config, data and logs (``RANKING_SIDECAR_RUN`` to move it)."""
    env = os.environ.get("RANKING_SIDECAR_RUN")
    return Path(env) if env else cache_root() / "run"


def _traversable(path: Path) -> None:
    """The node's user must reach its run folder: add o+x to our folders above it."""
    for parent in path.parents:
        try:
            st = parent.stat()
        except OSError:
            continue
        if st.st_uid == os.geteuid() and not st.st_mode & 0o001:
            parent.chmod(st.st_mode | 0o001)


def log(msg: str) -> None:
    print(f"[opensearch] {msg}", file=sys.stderr, flush=True)


def default_version() -> str:
    """``OPENSEARCH_VERSION`` when set, else :data:`DEFAULT_VERSION`."""
    return os.environ.get("OPENSEARCH_VERSION") or DEFAULT_VERSION


def secured_version(version: str | None = None) -> str:
    """The line of a secured node: ``version`` (default: :func:`default_version`) when its
    security plugin is published, else the newest line whose plugin is
    (:data:`SECURED_LINES`)."""
    version = version or default_version()
    return version if version in SECURED_LINES else SECURED_LINES[0]


def other_version(version: str | None = None) -> str:
    """The supported line of the other major version than ``version`` (default:
    :func:`default_version`)."""
    version = version or default_version()
    return next(v for v in LINES if major(v) != major(version))


def major(version: str) -> int:
    return int(version.split(".")[0])


def java_home(version: str) -> str:
    """Java 17 runs OpenSearch 2.x; 3.x needs 21+ (the machine's Temurin 25)."""
    explicit = os.environ.get("OPENSEARCH_JAVA_HOME")
    if explicit:
        return explicit
    candidates = (
        ["/usr/lib/jvm/temurin-25-jdk-amd64", "/usr/lib/jvm/java-21-openjdk-amd64"]
        if major(version) >= 3
        else ["/usr/lib/jvm/java-17-openjdk-amd64", "/usr/lib/jvm/java-21-openjdk-amd64"]
    )
    for path in candidates:
        if Path(path, "bin", "java").exists():
            return path
    java = shutil.which("java")
    if not java:
        raise NodeError(
            "no Java found: install a JDK (17 for OpenSearch 2.x, 21+ for 3.x) or set "
            "OPENSEARCH_JAVA_HOME"
        )
    return str(Path(os.path.realpath(java)).parents[1])


# -- download ------------------------------------------------------------------------------


def _mvn(args: list[str], repo: Path, cwd: Path | None = None) -> None:
    mvn = shutil.which("mvn")
    if not mvn:
        raise NodeError("Maven (mvn) is needed to download OpenSearch from Maven Central")
    cmd = [mvn, "-q", "-B", f"-Dmaven.repo.local={repo}", *args]
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        tail = (out.stdout + out.stderr)[-2000:]
        raise NodeError(f"mvn {' '.join(args[:2])} failed:\n{tail}")


def download(version: str, root: Path, secured: bool = False) -> Path:
    """Fetch the distribution and plugin zips once; returns the folder that holds them."""
    dest = root / "dl" / version
    dest.mkdir(parents=True, exist_ok=True)
    wanted = [
        (
            f"org.opensearch.distribution.integ-test-zip:opensearch:{version}:zip",
            dest / f"opensearch-{version}.zip",
        )
    ]
    wanted += [
        (f"org.opensearch.plugin:{p}:{version}.0:zip", dest / f"{p}-{version}.0.zip")
        for p in ((*PLUGINS, SECURITY_PLUGIN) if secured else PLUGINS)
    ]
    for coordinate, path in wanted:
        if path.exists() and zipfile.is_zipfile(path):
            continue
        log(f"downloading {coordinate} from Maven Central")
        _mvn(
            [
                f"{MAVEN_DEPENDENCY_PLUGIN}:copy",
                f"-Dartifact={coordinate}",
                f"-DoutputDirectory={dest}",
            ],
            root / "m2",
        )
        if not path.exists():
            raise NodeError(f"{coordinate} was not downloaded to {path}")
    return dest


def _assemble_module(module: Module, version: str, home: Path, root: Path) -> None:
    target = home / "modules" / module.name
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pom = Path(tmp, "pom.xml")
        pom.write_text(
            '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0'
            "</modelVersion><groupId>local</groupId><artifactId>module-fetch</artifactId>"
            "<version>1</version><packaging>pom</packaging><dependencies><dependency>"
            f"<groupId>org.opensearch.plugin</groupId><artifactId>{module.name}</artifactId>"
            f"<version>{version}</version></dependency></dependencies></project>",
            encoding="utf-8",
        )
        _mvn(
            [
                f"{MAVEN_DEPENDENCY_PLUGIN}:copy-dependencies",
                f"-DoutputDirectory={target}",
                "-DincludeScope=runtime",
                f"-DincludeGroupIds={','.join(module.groups)}",
            ],
            root / "m2",
            cwd=Path(tmp),
        )
    java_version = "21" if major(version) >= 3 else "11"
    (target / "plugin-descriptor.properties").write_text(
        f"description={module.description}\nversion={version}\nname={module.name}\n"
        f"classname={module.classname}\njava.version={java_version}\n"
        f"opensearch.version={version}\nextended.plugins={module.extended}\n"
        "has.native.controller=false\n",
        encoding="utf-8",
    )
    if module.policy:
        (target / "plugin-security.policy").write_text(module.policy, encoding="utf-8")


def install(version: str | None = None, root: Path | None = None, secured: bool = False) -> Path:
    """The installed distribution (with modules and plugins); built once, then reused.
    ``secured``: another folder, with the security plugin and its demo configuration."""
    version = version or default_version()
    root = root or cache_root()
    home = root / "dist" / f"opensearch-{version}{'-secured' if secured else ''}"
    marker = home / ".installed"
    if marker.exists():
        return home
    dl = download(version, root, secured)
    staging = root / "dist" / f".staging-{version}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    log(f"installing OpenSearch {version} into {home}")
    with zipfile.ZipFile(dl / f"opensearch-{version}.zip") as zf:
        zf.extractall(staging)
    built = staging / f"opensearch-{version}"
    for p in (built / "bin").iterdir():
        p.chmod(0o755)
    for module in MODULES:
        if (built / "modules" / module.name).exists():
            continue  # 3.x ships it
        log(f"assembling the module {module.name} (not in the {version} zip)")
        _assemble_module(module, version, built, root)
    env = {**os.environ, "OPENSEARCH_JAVA_HOME": java_home(version)}
    for plugin in PLUGINS:
        zip_path = dl / f"{plugin}-{version}.0.zip"
        out = subprocess.run(
            [str(built / "bin" / "opensearch-plugin"), "install", "--batch", zip_path.as_uri()],
            env=env,
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            raise NodeError(f"installing {plugin} failed:\n{(out.stdout + out.stderr)[-2000:]}")
    if secured:
        _install_security(built, dl / f"{SECURITY_PLUGIN}-{version}.0.zip", env)
    subprocess.run(["chmod", "-R", "a+rX", str(built)], check=True)
    shutil.rmtree(home, ignore_errors=True)
    built.rename(home)
    shutil.rmtree(staging, ignore_errors=True)
    marker.write_text(
        json.dumps({"version": version, "plugins": PLUGINS, "secured": secured}), encoding="utf-8"
    )
    return home


def _install_security(home: Path, zip_path: Path, env: dict[str, str]) -> None:
    """The security plugin, then its demo configuration (certificates, the ``admin`` user with
    ``ADMIN_PASSWORD``, the ``plugins.security.*`` block appended to ``opensearch.yml``)."""
    steps = [
        [str(home / "bin" / "opensearch-plugin"), "install", "--batch", zip_path.as_uri()],
        ["bash", str(home / "plugins" / SECURITY_PLUGIN / "tools" / DEMO_SCRIPT), "-y", "-i", "-s"],
    ]
    env = {**env, "OPENSEARCH_INITIAL_ADMIN_PASSWORD": ADMIN_PASSWORD}
    for cmd in steps:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if out.returncode != 0 or "failed validation" in out.stdout:
            raise NodeError(f"{' '.join(cmd[:3])} failed:\n{(out.stdout + out.stderr)[-2000:]}")


def demo_security_block(home: Path) -> str:
    """The ``plugins.security.*`` settings the demo installer appended to the distribution's
    ``opensearch.yml`` (the node writes its own file, so it carries them over)."""
    text = (home / "config" / "opensearch.yml").read_text(encoding="utf-8")
    start, end = text.find(DEMO_BEGIN), text.find(DEMO_END)
    if start < 0 or end < 0:
        raise NodeError(f"no demo security configuration in {home / 'config' / 'opensearch.yml'}")
    return text[start : end + len(DEMO_END)] + "\n"


# -- one node ------------------------------------------------------------------------------


def _ensure_user() -> tuple[int, int]:
    try:
        pw = pwd.getpwnam(NODE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", NODE_USER],
            check=True,
            capture_output=True,
        )
        pw = pwd.getpwnam(NODE_USER)
    return pw.pw_uid, pw.pw_gid


def http_json(
    url: str,
    method: str = "GET",
    body: object = None,
    timeout: float = 10,
    auth: tuple[str, str] | None = None,
    ca_certs: str | None = None,
) -> object:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    context = ssl.create_default_context(cafile=ca_certs) if url.startswith("https") else None
    with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
        return json.load(resp)


@dataclass
class LocalNode:
    """One OpenSearch node on loopback. ``start()`` returns once the cluster is green."""

    #: default: :func:`default_version`, or :func:`secured_version` for a secured node
    version: str = ""
    run_dir: Path | None = None
    heap: str = os.environ.get("OPENSEARCH_HEAP", "1g")
    http_port: int = 0
    #: HTTPS and basic auth (the security plugin's demo configuration; module docstring)
    secured: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.version:
            self.version = secured_version() if self.secured else default_version()
        elif self.secured and self.version not in SECURED_LINES:
            raise NodeError(
                f"no security plugin {self.version}.0 on Maven Central: a secured node runs "
                f"{' or '.join(SECURED_LINES)} (--version)"
            )

    @property
    def url(self) -> str:
        return f"{'https' if self.secured else 'http'}://127.0.0.1:{self.http_port}"

    @property
    def ca_certs(self) -> str | None:
        """The CA bundle that verifies a secured node's certificate."""
        if not self.secured or self.run_dir is None:
            return None
        return str(self.run_dir / "config" / "root-ca.pem")

    @property
    def auth(self) -> tuple[str, str] | None:
        return (ADMIN_USER, ADMIN_PASSWORD) if self.secured else None

    @property
    def log_file(self) -> Path:
        assert self.run_dir is not None
        return self.run_dir / "logs" / "opensearch.log"

    def start(self, timeout: float = 240.0) -> str:
        home = install(self.version, secured=self.secured)
        if self.run_dir is None:
            run_root().mkdir(parents=True, exist_ok=True)
            self.run_dir = Path(tempfile.mkdtemp(prefix="node-", dir=run_root()))
        run = self.run_dir
        conf = run / "config"
        shutil.rmtree(conf, ignore_errors=True)
        shutil.copytree(home / "config", conf)
        for sub in ("data", "logs"):
            (run / sub).mkdir(parents=True, exist_ok=True)
        self.http_port = self.http_port or free_port()
        transport = free_port()
        (conf / "opensearch.yml").write_text(
            "\n".join(
                [
                    "cluster.name: ranking-sidecar",
                    "node.name: node-1",
                    "discovery.type: single-node",
                    "network.host: 127.0.0.1",
                    f"http.port: {self.http_port}",
                    f"transport.port: {transport}",
                    f"path.data: {run / 'data'}",
                    f"path.logs: {run / 'logs'}",
                    # a small machine: let ML Commons run whatever memory and disk look like
                    "plugins.ml_commons.only_run_on_ml_node: false",
                    "plugins.ml_commons.native_memory_threshold: 100",
                    "plugins.ml_commons.jvm_heap_memory_threshold: 100",
                    "plugins.ml_commons.disk_free_space_threshold: 0b",
                    "cluster.routing.allocation.disk.threshold_enabled: false",
                    "",
                ]
            )
            + (demo_security_block(home) if self.secured else ""),
            encoding="utf-8",
        )
        # The launcher runs from the (read-only) distribution folder: point the JVM's
        # relative log and dump paths at this node's run folder.
        jvm = (conf / "jvm.options").read_text(encoding="utf-8")
        jvm = jvm.replace("file=logs/", f"file={run / 'logs'}/")
        jvm = jvm.replace("ErrorFile=logs/", f"ErrorFile={run / 'logs'}/")
        jvm = jvm.replace("HeapDumpPath=data", f"HeapDumpPath={run / 'data'}")
        (conf / "jvm.options").write_text(jvm, encoding="utf-8")
        (conf / "jvm.options.d").mkdir(exist_ok=True)
        (conf / "jvm.options.d" / "heap.options").write_text(
            f"-Xms{self.heap}\n-Xmx{self.heap}\n", encoding="utf-8"
        )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "OPENSEARCH_JAVA_HOME": java_home(self.version),
            "OPENSEARCH_PATH_CONF": str(conf),
            "HOME": str(run),
        }
        cmd = [str(home / "bin" / "opensearch")]
        if os.geteuid() == 0:
            uid, gid = _ensure_user()
            subprocess.run(["chown", "-R", f"{uid}:{gid}", str(run)], check=True)
            _traversable(run)
            cmd = [
                "runuser",
                "-u",
                NODE_USER,
                "--",
                "env",
                *[f"{k}={v}" for k, v in env.items()],
                *cmd,
            ]
        log(f"starting node {self.version} on {self.url} (run dir {run})")
        with open(run / "logs" / "stdout.log", "ab") as stdout:  # the child keeps its own fd
            self.process = subprocess.Popen(
                cmd,
                env=env,
                stdout=stdout,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=run,
            )
        (run / "node.json").write_text(
            json.dumps(
                {
                    "url": self.url,
                    "pid": self.process.pid,
                    "version": self.version,
                    "ca_certs": self.ca_certs,
                    "user": ADMIN_USER if self.secured else None,
                }
            ),
            encoding="utf-8",
        )
        self.wait_green(timeout)
        return self.url

    def wait_green(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise NodeError(
                    f"OpenSearch exited with code {self.process.returncode}:\n" + self.tail()
                )
            try:
                health = http_json(
                    f"{self.url}/_cluster/health?wait_for_status=green&timeout=2s",
                    timeout=5,
                    auth=self.auth,
                    ca_certs=self.ca_certs,
                )
                if isinstance(health, dict) and health.get("status") == "green":
                    log(f"green: {self.url}")
                    return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(1)
        raise NodeError(f"OpenSearch was not green within {timeout:.0f}s:\n" + self.tail())

    def tail(self, lines: int = 60) -> str:
        for path in (self.log_file, (self.run_dir or Path(".")) / "logs" / "stdout.log"):
            if path.exists():
                text = path.read_text(encoding="utf-8", errors="replace").splitlines()
                return "\n".join(text[-lines:])
        return "(no log yet)"

    def stop(self, timeout: float = 60.0) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log(f"stopped; logs kept in {self.run_dir / 'logs' if self.run_dir else '?'}")


# -- command line ----------------------------------------------------------------------------


def _state_dir(name: str) -> Path:
    return run_root() / name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m local_node", description=__doc__.split("\n")[0])
    ap.add_argument("action", choices=["install", "start", "stop", "status"])
    ap.add_argument("--name", default="default", help="which node (a run folder of its own)")
    ap.add_argument(
        "--version",
        default="",
        help=f"OpenSearch version (env OPENSEARCH_VERSION; default {default_version()}, or "
        f"{secured_version()} with --secured; the supported lines: {', '.join(LINES)})",
    )
    ap.add_argument("--port", type=int, default=0, help="HTTP port (default: a free one)")
    ap.add_argument(
        "--secured",
        action="store_true",
        help="with the security plugin: HTTPS (demo certificates) and basic auth (admin)",
    )
    args = ap.parse_args(argv)
    state = _state_dir(args.name)
    if args.action == "install":
        print(install(args.version or default_version()))
        return 0
    if args.action == "status":
        info = state / "node.json"
        if not info.exists():
            print("not running")
            return 1
        found = json.loads(info.read_text())
        url = found["url"]
        auth = (ADMIN_USER, ADMIN_PASSWORD) if found.get("user") else None
        try:
            health = http_json(f"{url}/_cluster/health", auth=auth, ca_certs=found.get("ca_certs"))
            print(json.dumps(health, indent=2))
            return 0
        except (urllib.error.URLError, OSError):
            print(f"not answering at {url}")
            return 1
    if args.action == "stop":
        info = state / "node.json"
        if not info.exists():
            print("not running")
            return 0
        pid = int(json.loads(info.read_text())["pid"])
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        for _ in range(60):
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(1)
        info.unlink(missing_ok=True)
        print(f"stopped (logs in {state / 'logs'})")
        return 0
    # start: a detached node that outlives this command
    old = state / "node.json"
    if old.exists():
        found = json.loads(old.read_text())
        url = found["url"]
        auth = (ADMIN_USER, ADMIN_PASSWORD) if found.get("user") else None
        try:
            ca_certs = found.get("ca_certs")
            http_json(f"{url}/_cluster/health", timeout=3, auth=auth, ca_certs=ca_certs)
            print(url)
            return 0
        except (urllib.error.URLError, OSError):
            old.unlink()
    node = LocalNode(version=args.version, run_dir=state, http_port=args.port, secured=args.secured)
    node.start()
    if node.secured:
        log(f"secured: user {ADMIN_USER}, password {ADMIN_PASSWORD!r}, CA {node.ca_certs}")
    print(node.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())

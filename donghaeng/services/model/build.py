"""Build llama.cpp's ``llama-server`` from the ``llama-cpp-python`` source distribution on PyPI.

The sdist vendors the whole llama.cpp tree; we compile only its HTTP server as one static binary
(no web UI, no HTTPS, no downloads at build or run time).  The result is cached: a binary that
exists and reports its version is never rebuilt unless ``--force`` is given.

    python -m donghaeng.services.model.build [--prefix /opt/donghaeng] [--force] [--sdist FILE]

The sdist is fetched directly from the package index (PEP 691 JSON) and checked against a pinned
SHA-256, not with ``pip download``: pip prepares an sdist's metadata before saving it, and with
``--no-binary :all:`` that meant building setuptools, scikit-build-core and friends from source
first (about ten minutes of a fresh install).  Air-gapped sites pass ``--sdist`` a copied file.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import httpx

#: The one PyPI source distribution the engine is built from (pin: the server's API is what we tested).
SDIST_PROJECT, SDIST_VERSION = "llama-cpp-python", "0.3.36"
SDIST_FILE = f"llama_cpp_python-{SDIST_VERSION}.tar.gz"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
DEFAULT_INDEX = "https://pypi.org/simple"
DEFAULT_PREFIX = Path("/opt/donghaeng")

CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",        # one self-contained binary
    "-DLLAMA_BUILD_UI=OFF",           # no npm build of the chat web UI ...
    "-DLLAMA_USE_PREBUILT_UI=OFF",    # ... and no download of a prebuilt one
    "-DLLAMA_OPENSSL=OFF",            # the engine only listens on loopback
    "-DLLAMA_CURL=OFF",               # never fetch models at run time
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    # Not GGML_NATIVE: -march=native also turns on AMX, whose tile instructions fault in VMs that
    # advertise AMX without enabling it (seen on this lab's build machine).  We enable the x86
    # extensions the CPU has, AMX excepted; see x86_flags().
    "-DGGML_NATIVE=OFF",
]

# /proc/cpuinfo flag(s) -> ggml cmake option
X86_FEATURES = [
    (("sse4_2",), "GGML_SSE42"), (("avx",), "GGML_AVX"), (("avx2",), "GGML_AVX2"), (("fma",), "GGML_FMA"),
    (("f16c",), "GGML_F16C"), (("bmi2",), "GGML_BMI2"), (("avx_vnni",), "GGML_AVX_VNNI"),
    (("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"), "GGML_AVX512"),
    (("avx512vbmi",), "GGML_AVX512_VBMI"), (("avx512_vnni",), "GGML_AVX512_VNNI"),
    (("avx512_bf16",), "GGML_AVX512_BF16"),
]


def x86_flags(cpuinfo: str | None = None) -> list[str]:
    """cmake options for the CPU extensions this machine has (never AMX); [] off x86."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return []
    line = next((ln for ln in cpuinfo.splitlines() if ln.startswith("flags")), "")
    have = set(line.partition(":")[2].split())
    if not have:
        return []
    flags = [f"-D{opt}={'ON' if all(f in have for f in need) else 'OFF'}" for need, opt in X86_FEATURES]
    return flags + ["-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"]


def binary_path(prefix: Path = DEFAULT_PREFIX) -> Path:
    return prefix / "bin" / "llama-server"


def is_usable(binary: Path) -> bool:
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        return False
    try:
        r = subprocess.run([str(binary), "--version"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def fetch_sdist(dest: Path, index_url: str | None = None) -> Path:
    """Download :data:`SDIST_FILE` from *index_url* (default ``$PIP_INDEX_URL`` or PyPI) into *dest*."""
    index = (index_url or os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX).rstrip("/")
    verify: str | bool = os.environ.get("PIP_CERT") or True  # pip's CA bundle, where the site sets one
    with httpx.Client(timeout=httpx.Timeout(60, read=180), follow_redirects=True, verify=verify) as client:
        r = client.get(f"{index}/{SDIST_PROJECT}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        r.raise_for_status()
        try:
            files = r.json().get("files", [])
        except ValueError:
            raise SystemExit(f"{index}가 PEP 691(JSON) 목록을 주지 않아요: --sdist로 {SDIST_FILE}을 주세요 / "
                             f"the index has no JSON API; pass --sdist") from None
        entry = next((f for f in files if f.get("filename") == SDIST_FILE), None)
        if entry is None:
            raise SystemExit(f"{index}에 {SDIST_FILE}이 없어요 / {SDIST_FILE} not found on {index}")
        target = dest / SDIST_FILE
        with client.stream("GET", httpx.URL(r.url).join(entry["url"])) as download, open(target, "wb") as out:
            download.raise_for_status()
            for chunk in download.iter_bytes():
                out.write(chunk)
    return target


def checked_sdist(path: Path) -> Path:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise SystemExit(f"{path.name}의 SHA-256이 고정된 값과 달라요: 받은 파일을 믿을 수 없어요 / "
                         f"checksum mismatch ({digest} != {SDIST_SHA256})")
    return path


def build(prefix: Path = DEFAULT_PREFIX, *, force: bool = False, jobs: int | None = None,
          sdist: Path | None = None, index_url: str | None = None) -> Path:
    """Build (or reuse) ``<prefix>/bin/llama-server`` and return its path."""
    target = binary_path(prefix)
    if not force and is_usable(target):
        print(f"llama-server already built: {target}")
        return target
    for tool in ("cmake", "c++"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool}가 없어요: apt-get install cmake g++ 후 다시 실행해 주세요 / {tool} missing")
    jobs = jobs or os.cpu_count() or 2
    target.parent.mkdir(parents=True, exist_ok=True)
    log_path = target.parent / "llama-server.build.log"
    with tempfile.TemporaryDirectory(prefix="llama-build-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        if sdist is None:
            print(f"downloading the {SDIST_PROJECT} {SDIST_VERSION} source distribution")
        archive = checked_sdist(sdist or fetch_sdist(work, index_url))
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():  # Python 3.11.2 has no extraction filters
                if member.name.startswith("/") or ".." in Path(member.name).parts or member.islnk() or member.issym():
                    raise SystemExit(f"unexpected path in {archive.name}: {member.name}")
            tar.extractall(work)
        src = next(work.glob("llama_cpp_python-*/vendor/llama.cpp"))
        build_dir = work / "build"
        print(f"building llama-server with cmake ({jobs} jobs; 5-15 minutes); log: {log_path}")
        with open(log_path, "w") as log:
            for step in (["cmake", "-S", str(src), "-B", str(build_dir), *CMAKE_FLAGS, *x86_flags()],
                         ["cmake", "--build", str(build_dir), "--target", "llama-server", "-j", str(jobs)]):
                log.write("$ " + " ".join(step) + "\n")
                log.flush()
                if subprocess.run(step, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                    raise SystemExit(f"llama-server build failed; see {log_path}")
        built = build_dir / "bin" / "llama-server"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp_target = target.with_suffix(".new")
        shutil.copy2(built, tmp_target)
        tmp_target.chmod(0o755)
        tmp_target.replace(target)  # atomic: a running engine keeps its old inode
    if not is_usable(target):
        raise SystemExit(f"llama-server was built but does not run: {target}")
    print(f"llama-server built: {target}")
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", type=Path, default=DEFAULT_PREFIX)
    parser.add_argument("--force", action="store_true", help="rebuild even if a binary exists")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--sdist", type=Path, default=None, help=f"a copied {SDIST_FILE} (air-gapped sites)")
    parser.add_argument("--index-url", default=None, help=f"package index (default $PIP_INDEX_URL or {DEFAULT_INDEX})")
    args = parser.parse_args(argv)
    build(args.prefix, force=args.force, jobs=args.jobs, sdist=args.sdist, index_url=args.index_url)


if __name__ == "__main__":
    main()

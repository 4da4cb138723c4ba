#!/usr/bin/env python3
"""Checks whatever dist/ holds: each native binary's
architecture (ELF machine), its C library (glibc: NEEDED libc.so.6 and the
newest GLIBC_ symbol version, at most 2.17; musl: NEEDED libc.so with musl's
loader naming), wheel tags (file name and the WHEEL file agree, abi3), the npm
packages' os/cpu/libc fields, and the wasm engine's gzipped size against its
budget. Prints one line per artifact with its size, and writes dist/MANIFEST.txt.

Then each binary is loaded by the C library it was built for, where this
machine can: a small probe program (dlopen + dlsym of the module's entry
point, napi_register_module_v1 or PyInit__native) built for that platform,
run natively (x86_64 glibc; x86_64 musl with Debian's musl-gcc) or under
Debian's qemu-aarch64 with the libc6-arm64-cross sysroot (aarch64 glibc).
aarch64 musl has no runnable loader from the registries here: checked by
readelf only. scripts/setup-dist.sh --emulators installs the Debian packages.

Exit status 1 when an artifact contradicts what its name says.
"""

import gzip
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

DIST = Path(__file__).resolve().parent.parent / "dist"
GLIBC_MAX = (2, 17)
WASM_BUDGET_GZ = 150 * 1024
MACHINE = {"x86_64": "Advanced Micro Devices X86-64", "aarch64": "AArch64"}
failures: list[str] = []
lines: list[str] = []


def fail(message: str) -> None:
    failures.append(message)
    print(f"FAIL {message}", file=sys.stderr)


def readelf(*args: str) -> str:
    return subprocess.run(["readelf", "-W", *args], check=True, capture_output=True, text=True).stdout


def check_elf(name: str, data: bytes, arch: str, libc: str) -> str:
    """Checks one shared library; returns a description (machine, libc, newest GLIBC)."""
    with tempfile.NamedTemporaryFile(suffix=".so") as f:
        f.write(data)
        f.flush()
        header = readelf("-h", f.name)
        machine = re.search(r"Machine:\s+(.+)", header).group(1).strip()
        if machine != MACHINE[arch]:
            fail(f"{name}: machine {machine!r}, expected {MACHINE[arch]!r}")
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", readelf("-d", f.name))
        versions = sorted(
            {tuple(int(p) for p in v.split(".")) for v in re.findall(r"@GLIBC_([0-9.]+)", readelf("--dyn-syms", f.name))}
        )
        if libc == "gnu":
            if "libc.so.6" not in needed:
                fail(f"{name}: glibc build without libc.so.6 in NEEDED ({needed})")
            newest = versions[-1] if versions else None
            if newest is None or newest > GLIBC_MAX:
                fail(f"{name}: newest GLIBC symbol {newest}, must be <= 2.17")
            return f"{arch}, glibc, newest symbol GLIBC_{'.'.join(map(str, newest or ()))}"
        if versions or "libc.so.6" in needed:
            fail(f"{name}: musl build refers to glibc ({needed}, {versions[-1:]})")
        if "libc.so" not in needed:
            fail(f"{name}: musl build without libc.so in NEEDED ({needed})")
        return f"{arch}, musl (NEEDED {', '.join(needed)})"


PROBE_C = r"""
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
  if (argc != 3) return 2;
  void *handle = dlopen(argv[1], RTLD_LAZY | RTLD_LOCAL);
  if (!handle) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 1; }
  if (!dlsym(handle, argv[2])) { fprintf(stderr, "dlsym %s: %s\n", argv[2], dlerror()); return 1; }
  return 0;
}
"""
CACHE = DIST.parent / ".cache" / "dist-probe"
ZIG = [str(DIST.parent / ".cache" / "dist-venv" / "bin" / "python"), "-m", "ziglang", "cc"]
probes: dict[tuple[str, str], list[str] | str] = {}


def probe_command(arch: str, libc: str) -> list[str] | str:
    """The command prefix that runs a probe for (arch, libc), or why there is none."""
    key = (arch, libc)
    if key in probes:
        return probes[key]
    CACHE.mkdir(parents=True, exist_ok=True)
    source = CACHE / "probe.c"
    source.write_text(PROBE_C)
    exe = CACHE / f"probe-{arch}-{libc}"
    build: list[str] | None = None
    run: list[str] = [str(exe)]
    host = subprocess.run(["uname", "-m"], capture_output=True, text=True).stdout.strip()
    if arch == host == "x86_64" and libc == "gnu":
        build = ["cc", "-O2", "-o", str(exe), str(source), "-ldl"]
    elif arch == host == "x86_64" and libc == "musl":
        if not shutil.which("musl-gcc"):
            probes[key] = "no musl-gcc (Debian musl-tools)"
            return probes[key]
        build = ["musl-gcc", "-O2", "-o", str(exe), str(source)]
    elif arch == "aarch64" and libc == "gnu":
        sysroot = Path("/usr/aarch64-linux-gnu")
        if not shutil.which("qemu-aarch64") or not (sysroot / "lib" / "ld-linux-aarch64.so.1").exists():
            probes[key] = "no qemu-aarch64 or aarch64 glibc sysroot (Debian qemu-user, libc6-arm64-cross)"
            return probes[key]
        if not Path(ZIG[0]).exists():
            probes[key] = "no zig (scripts/setup-dist.sh)"
            return probes[key]
        build = [*ZIG, "-target", "aarch64-linux-gnu.2.17", "-O2", "-o", str(exe), str(source)]
        run = ["qemu-aarch64", "-L", str(sysroot), str(exe)]
    else:
        probes[key] = f"no {arch} {libc} loader runs on this machine"
        return probes[key]
    if not exe.exists():
        built = subprocess.run(build, capture_output=True, text=True)
        if built.returncode != 0:
            probes[key] = f"the probe did not build: {built.stderr.strip()[-200:]}"
            return probes[key]
    probes[key] = run
    return run


def load(name: str, data: bytes, arch: str, libc: str, symbol: str) -> str:
    """Loads the binary with its own C library (natively or under qemu); returns what happened."""
    command = probe_command(arch, libc)
    if isinstance(command, str):
        return f"not loaded: {command}"
    with tempfile.NamedTemporaryFile(suffix=".so") as f:
        f.write(data)
        f.flush()
        run = subprocess.run([*command, f.name, symbol], capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        fail(f"{name}: does not load with {arch} {libc}: {run.stderr.strip()}")
        return "DOES NOT LOAD"
    return f"loads ({'qemu-aarch64' if command[0] == 'qemu-aarch64' else 'natively'}, {symbol})"


def load_extension(name: str, data: bytes, arch: str, libc: str) -> str:
    """A wheel's extension needs a Python to resolve its symbols: imported by this
    machine's CPython when it is of the wheel's platform, else not loaded."""
    host = subprocess.run(["uname", "-m"], capture_output=True, text=True).stdout.strip()
    if (arch, libc) != (host, "gnu"):
        return f"not loaded: no {arch} {libc} CPython here"
    code = (
        "import importlib.util, sys; spec = importlib.util.spec_from_file_location('tokenwell._native', sys.argv[1]);"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)"
    )
    with tempfile.NamedTemporaryFile(suffix=".abi3.so") as f:
        f.write(data)
        f.flush()
        run = subprocess.run([sys.executable, "-c", code, f.name], capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        fail(f"{name}: CPython {sys.version_info.major}.{sys.version_info.minor} cannot import it: {run.stderr.strip()[-300:]}")
        return "DOES NOT IMPORT"
    return f"imports (CPython {sys.version_info.major}.{sys.version_info.minor})"


def size(path: Path) -> str:
    return f"{path.stat().st_size / 1024:.0f} KiB"


def npm_package(path: Path) -> None:
    with tarfile.open(path) as tar:
        members = {m.name: m for m in tar.getmembers()}
        pkg = json.load(tar.extractfile(members["package/package.json"]))
        if pkg["name"] == "tokenwell":
            wasm = tar.extractfile(members["package/wasm/tokenwell_wasm_bg.wasm"]).read()
            gz = len(gzip.compress(wasm, 9))
            over = "" if gz <= WASM_BUDGET_GZ else f", OVER the {WASM_BUDGET_GZ // 1024} KiB budget"
            optional = ", ".join(sorted(pkg.get("optionalDependencies", {})))
            lines.append(
                f"{path.name}  {size(path)}  main package; wasm engine {len(wasm) / 1024:.0f} KiB "
                f"({gz / 1024:.0f} KiB gzipped{over}); optional: {optional}"
            )
            if "install" in pkg.get("scripts", {}) or "postinstall" in pkg.get("scripts", {}):
                fail(f"{path.name}: has an install script (installs must not compile)")
            return
        platform = pkg["name"].removeprefix("@tokenwell/")
        _, cpu, libc = platform.split("-")
        arch = {"x64": "x86_64", "arm64": "aarch64"}[cpu]
        if pkg.get("cpu") != [cpu] or pkg.get("libc") != [{"gnu": "glibc", "musl": "musl"}[libc]]:
            fail(f"{path.name}: cpu/libc fields {pkg.get('cpu')}/{pkg.get('libc')} do not match {platform}")
        binary = tar.extractfile(members[f"package/tokenwell.{platform}.node"]).read()
        described = check_elf(path.name, binary, arch, libc)
        loaded = load(path.name, binary, arch, libc, "napi_register_module_v1")
        lines.append(f"{path.name}  {size(path)}  {described}; {loaded}")


def wheel(path: Path) -> None:
    m = re.match(r"tokenwell-[^-]+-cp39-abi3-(.+)\.whl$", path.name)
    if not m:
        fail(f"{path.name}: not a cp39-abi3 wheel name")
        return
    platform_tag = m.group(1)
    with zipfile.ZipFile(path) as zf:
        wheel_meta = next(n for n in zf.namelist() if n.endswith(".dist-info/WHEEL"))
        tags = re.findall(r"^Tag: (.+)$", zf.read(wheel_meta).decode(), re.M)
        if sorted(tags) != sorted(f"cp39-abi3-{t}" for t in platform_tag.split(".")):
            fail(f"{path.name}: WHEEL tags {tags} do not match the file name")
        so = next(n for n in zf.namelist() if n.endswith(".so"))
        arch = "aarch64" if "aarch64" in platform_tag else "x86_64"
        libc = "musl" if "musllinux" in platform_tag else "gnu"
        if libc == "gnu" and not re.match(r"(manylinux2014|manylinux_2_17)_", platform_tag):
            fail(f"{path.name}: glibc wheel not tagged manylinux_2_17 / manylinux2014")
        described = check_elf(path.name, zf.read(so), arch, libc)
        loaded = load_extension(path.name, zf.read(so), arch, libc)
        lines.append(f"{path.name}  {size(path)}  {described}; {loaded}")


def main() -> int:
    found = sorted(DIST.glob("npm/*.tgz")) + sorted(DIST.glob("python/*"))
    if not found:
        print(f"verify-dist: {DIST} holds no artifact (make dist builds them)")
        return 0
    for path in found:
        if path.suffix == ".tgz":
            npm_package(path)
        elif path.suffix == ".whl":
            wheel(path)
        elif path.name.endswith(".tar.gz"):
            with tarfile.open(path) as tar:
                names = tar.getnames()
            has_backend = any(n.endswith("build_backend/tokenwell_build.py") for n in names)
            has_core = any("/core/src/lib.rs" in n or n.endswith("tokenwell/src/lib.rs") for n in names)
            if not has_backend:
                fail(f"{path.name}: the sdist lacks build_backend/tokenwell_build.py (fail-fast without Rust)")
            lines.append(f"{path.name}  {size(path)}  sdist ({len(names)} files, engine sources {'in' if has_core else 'MISSING'})")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    (DIST / "MANIFEST.txt").write_text(text)
    if failures:
        print(f"verify-dist: {len(failures)} problem(s)", file=sys.stderr)
        return 1
    print(f"verify-dist: {len(lines)} artifacts checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""mkimage.py [--libs] OUT.tar REF BINARY [ENTRYPOINT_ARG...]: write a docker-archive image (the format of
`docker save`, which `ctr images import` reads) holding one binary at /<basename>, run as the entrypoint.
The binary is static, or with --libs dynamically linked: then the shared libraries `ldd` lists (and the
dynamic loader) are copied in at the paths it gives, so a Rust binary built against this machine's glibc
runs in the image.

Reproducible: every timestamp is 0, owner root, fixed order, so the same binary always gives the same
image digest. The rootfs also has /tmp (mode 1777) and /etc/passwd, /etc/group with root and nobody.
"""
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile


def add(tar, name, data=None, mode=0o644, kind=tarfile.REGTYPE):
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
    info.type, info.mode = kind, mode
    if data is not None:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        tar.addfile(info)


def shared_libraries(binary):
    """The absolute paths of the libraries (and loader) `ldd` says `binary` loads, sorted."""
    text = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    return sorted({m for m in re.findall(r"(/\S+)", text) if os.path.exists(m)})


def main():
    argv = sys.argv[1:]
    with_libs = bool(argv) and argv[0] == "--libs"
    if with_libs:
        argv = argv[1:]
    if len(argv) < 3:
        sys.exit(__doc__)
    out, ref, binary, args = argv[0], argv[1], argv[2], argv[3:]
    name = os.path.basename(binary)
    with open(binary, "rb") as f:
        exe = f.read()

    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.USTAR_FORMAT) as t:
        add(t, "etc", mode=0o755, kind=tarfile.DIRTYPE)
        add(t, "etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        shell = b"/" + name.encode()
        add(t, "etc/passwd", b"root:x:0:0:root:/:" + shell + b"\nnobody:x:65534:65534:nobody:/:" + shell + b"\n")
        add(t, "tmp", mode=0o1777, kind=tarfile.DIRTYPE)
        add(t, name, exe, mode=0o755)
        dirs = set()
        for lib in shared_libraries(binary) if with_libs else []:
            parts = lib.strip("/").split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in dirs and d not in ("etc", "tmp"):
                    dirs.add(d)
                    add(t, d, mode=0o755, kind=tarfile.DIRTYPE)
            with open(os.path.realpath(lib), "rb") as f:
                add(t, "/".join(parts), f.read(), mode=0o755)
    layer = layer.getvalue()
    diff_id = hashlib.sha256(layer).hexdigest()

    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": {
                "Entrypoint": ["/" + name] + args,
                "Env": ["PATH=/"],
                "WorkingDir": "/",
            },
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id]},
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "tests/images/mkimage.py " + name}],
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    config_id = hashlib.sha256(config).hexdigest()
    manifest = json.dumps(
        [{"Config": config_id + ".json", "RepoTags": [ref], "Layers": [diff_id + "/layer.tar"]}],
        separators=(",", ":"),
    ).encode()

    tmp = out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.USTAR_FORMAT) as t:
        add(t, diff_id, mode=0o755, kind=tarfile.DIRTYPE)
        add(t, diff_id + "/layer.tar", layer)
        add(t, config_id + ".json", config)
        add(t, "manifest.json", manifest)
    os.replace(tmp, out)
    print(f"{out}: {ref} config sha256:{config_id} ({len(layer)} bytes)")


if __name__ == "__main__":
    main()

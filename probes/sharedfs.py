"""Where a run log may live as one live SQLite file, and where it may not.

SQLite's write-ahead log needs every process that opens the database on one host (its wal-index is shared
memory), and on parallel filesystems its locks fail outright. So a run directory on a network or parallel
filesystem (NFS, Lustre, GPFS, CIFS, FUSE mounts...) gets the published layout of probes.segments: the live
log on node-local storage, closed immutable segments published into the run directory.

Settings (environment variables):
  FORGESCOPE_SHARED_FS=1        the published layout wherever the run directory is (tests; a filesystem
                                the detection misses); =0 a single live file even where it detects a network
                                filesystem (one that is local after all)
  FORGESCOPE_STAGING_DIR=DIR    node-local folder for the live logs (default: the temp folder, $TMPDIR)
  FORGESCOPE_PUBLISH_EVERY_S=S  seconds between publications (default 5: see PUBLISH_EVERY_S)
  FORGESCOPE_HOST_ID=NAME       this host's identity, if host name and boot id do not tell hosts apart

Nothing here imports torch.
"""
from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

# A killed node loses at most the steps written since its last publication. 5 s keeps that short and a
# dashboard on another node nearly as fresh as a local one, while a run of 64 ranks makes ~13 new files a
# second on the filesystem's metadata server, and about as many merged ones (1 s would be 5 times that).
PUBLISH_EVERY_S = 5.0

# filesystems on which a live SQLite database is not shared across hosts: network and parallel ones
_NETWORK = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "ceph", "glusterfs", "beegfs", "9p",
            "afs", "gfs2", "ocfs2", "panfs", "wekafs", "pvfs2", "orangefs", "virtiofs", "vboxsf", "davfs",
            "ncpfs", "coda", "fuse"}
# FUSE filesystems that are node-local (a block device, a container's root): every other fuse.* is remote
_LOCAL_FUSE = {"fuseblk", "fuse.fuse-overlayfs", "fuse.lxcfs", "fuse.portal", "fuse.gvfsd-fuse",
               "fuse.squashfuse", "fuse.appimagefuse"}


def _unescape(field: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash in octal (\\040...)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def filesystem_type(path: str | os.PathLike, mounts: str = "/proc/mounts") -> str | None:
    """The type of the filesystem holding `path` (the nearest folder that exists), from the mount table:
    the longest mount point above it. None where there is no mount table to read (not Linux)."""
    p = Path(path).absolute()
    missing = []
    while not p.exists() and p != p.parent:     # a run folder not made yet: where it will be
        missing.insert(0, p.name)
        p = p.parent
    real = os.path.join(os.path.realpath(p), *missing)
    try:
        with open(mounts, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    best, kind = "", None
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = _unescape(fields[1])
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):      # the last of equal mount points is the one on top
            best, kind = point, fields[2]
    return kind


def is_network_type(kind: str | None) -> bool:
    if not kind or kind in _LOCAL_FUSE:
        return False
    return kind in _NETWORK or kind.startswith("fuse.") or kind.startswith("nfs")


def shared_mode(run_dir: str | os.PathLike) -> bool:
    """Whether a log written under run_dir uses the published layout (FORGESCOPE_SHARED_FS decides first)."""
    forced = os.environ.get("FORGESCOPE_SHARED_FS", "").strip().lower()
    if forced in ("1", "true", "yes", "on"):
        return True
    if forced in ("0", "false", "no", "off"):
        return False
    return is_network_type(filesystem_type(run_dir))


def publish_every() -> float:
    raw = os.environ.get("FORGESCOPE_PUBLISH_EVERY_S", "")
    try:
        value = float(raw) if raw.strip() else PUBLISH_EVERY_S
    except ValueError:
        value = PUBLISH_EVERY_S
    return value if value > 0 else PUBLISH_EVERY_S


def staging_root() -> Path:
    configured = os.environ.get("FORGESCOPE_STAGING_DIR", "").strip()
    if configured:
        return Path(configured)
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"forgescope-staging-{uid}"


def host_id() -> str:
    """This host: its name and this boot of its kernel (two machines with one name still differ)."""
    configured = os.environ.get("FORGESCOPE_HOST_ID", "").strip()
    if configured:
        return configured
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip()
    except OSError:
        boot = ""
    return f"{socket.gethostname()}/{boot}" if boot else socket.gethostname()

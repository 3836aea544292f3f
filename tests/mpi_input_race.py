#!/usr/bin/env python3
"""Changes an MPI job's input file under its ranks, at a point made deterministic (tests/test_mpi_input.sh).

    mpi_input_race.py truncate FILE RANKS -- MPIRUN ARGS...
    mpi_input_race.py swap FILE RANKS -- MPIRUN ARGS...

Starts the job, finds its RANKS `veil` processes (the job's descendants, by their OMPI_COMM_WORLD_RANK) and waits
(bounded) until each has FILE mapped (/proc/PID/maps), then:
- truncate: stops every rank (SIGSTOP), cuts FILE to a quarter of its size (at a page), lets them go on (SIGCONT): every read
  of the mapping past the new end comes after the cut (the ranks load chunks of batches in file order, over
  many chunks; training ranks read their share once the keys are loaded, after the mapping);
- swap: FILE was mapped shared and writable here and every page of it written before the job started, so that a
  later write through the mapping changes no time of the file (Linux stamps a mapped page's first write only).
  Waits until rank 0 has every page of FILE in its mapping (/proc/PID/smaps: its check of the set's digest
  reads every byte, before it takes any chunk; the others read object headers and the chunks they take, from
  the first), then stops ranks 1 .. R-1, swaps the bytes of the set's last two ciphertexts of one size (of an
  eval set's last batch, which the last chunk takes last; each one's own digest still holds) and lets them go
  on.
  The swap comes after rank 0's first check of the digest and before its last (rank 0 cannot be through before
  the others, stopped, send it their outputs).
Prints what it did on stderr and exits with the job's status (124 when something was not seen in time).
"""
import mmap
import os
import signal
import struct
import subprocess
import sys
import time


def job_ranks(job, want, deadline):
    """The job's rank processes, {rank: pid}: its descendants (mpirun's children, under timeout or not) that carry
    OMPI_COMM_WORLD_RANK in their environment."""
    while time.monotonic() < deadline:
        parent = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    with open(f"/proc/{name}/stat", "rb") as f:
                        stat = f.read()
                    parent[int(name)] = int(stat[stat.rindex(b")") + 2:].split()[1])
                except (OSError, ValueError):
                    pass
        found = {}
        for pid in parent:
            up, hops = parent.get(pid), 0
            while up and up != job.pid and hops < 8:
                up, hops = parent.get(up), hops + 1
            if up != job.pid:
                continue
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            for e in env:
                if e.startswith(b"OMPI_COMM_WORLD_RANK="):
                    found[int(e.split(b"=", 1)[1])] = pid
        if len(found) == want:
            return found
        if job.poll() is not None:
            return None
        time.sleep(0.005)
    return None


def all_mapped(pids, path, deadline):
    while time.monotonic() < deadline:
        seen = 0
        for pid in pids:
            try:
                with open(f"/proc/{pid}/maps") as f:
                    seen += any(line.rstrip("\n").endswith(" " + path) for line in f)
            except OSError:
                pass
        if seen == len(pids):
            return True
        time.sleep(0.001)
    return False


def mapped_whole(pid, path, size, deadline):
    """Whether pid has every page of path in its mapping (Rss of that mapping in /proc/PID/smaps)."""
    whole = size // 4096 * 4
    while time.monotonic() < deadline:
        rss, inside = 0, False
        try:
            with open(f"/proc/{pid}/smaps") as f:
                for line in f:
                    if line[0] in "0123456789abcdef" and "-" in line.split(" ", 1)[0]:
                        inside = line.rstrip("\n").endswith(" " + path)
                    elif inside and line.startswith("Rss:"):
                        rss += int(line.split()[1])
        except OSError:
            return False
        if rss >= whole:
            return True
        time.sleep(0.001)
    return False


def last_pair(data):
    """The last two objects of one length of a serialized set, as (offset, length) (framing of src/serial: a
    64-byte header, the metadata, the count, then each object's u64 length and bytes; object 0: the
    parameters). In an eval set, two ciphertexts of the last batch; in a training set, of the last group."""
    at = 64
    (meta_len,) = struct.unpack_from("<Q", data, at)
    at += 8 + meta_len
    (count,) = struct.unpack_from("<Q", data, at)
    at += 8
    objects = []
    for _ in range(count):
        (n,) = struct.unpack_from("<Q", data, at)
        objects.append((at + 8, n))
        at += 8 + n
    for j in range(len(objects) - 1, 1, -1):
        for i in range(j - 1, 0, -1):
            if objects[i][1] == objects[j][1]:
                return objects[i], objects[j]
    return None


def give_up(job, found, why):
    """Ends the job (its ranks first: mpirun under timeout is not the job's own process) and exits 124."""
    print(f"race: {why}", file=sys.stderr)
    for pid in (found or {}).values():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    job.kill()
    job.wait()
    sys.exit(124)


def main():
    mode, path, ranks = sys.argv[1], os.path.abspath(sys.argv[2]), int(sys.argv[3])
    cmd = sys.argv[sys.argv.index("--") + 1:]
    held = None
    if mode == "swap":
        fd = os.open(path, os.O_RDWR)
        held = mmap.mmap(fd, 0)
        held[:] = held[:]  # every page written now: the later swap is stamped with no new time
        os.close(fd)
    job = subprocess.Popen(cmd)
    deadline = time.monotonic() + 120
    found = job_ranks(job, ranks, deadline)
    if not found or not all_mapped(found.values(), path, deadline):
        give_up(job, found, f"the {ranks} ranks were not seen with {path} mapped")
    if mode == "truncate":
        for pid in found.values():
            os.kill(pid, signal.SIGSTOP)
        size = os.path.getsize(path)
        cut = size // 4 // 4096 * 4096  # at a page's start: every byte past it is on a page no longer there
        try:
            os.truncate(path, cut)
        finally:
            for pid in found.values():
                os.kill(pid, signal.SIGCONT)
        print(f"race: {path} cut from {size} to {cut} bytes under the {ranks} ranks", file=sys.stderr)
    else:
        if not mapped_whole(found[0], path, len(held), deadline):
            give_up(job, found, f"rank 0 was not seen reading every page of {path}")
        pair = last_pair(held)
        if not pair or held[pair[0][0]:pair[0][0] + pair[0][1]] == held[pair[1][0]:pair[1][0] + pair[1][1]]:
            give_up(job, found, f"{path} has no two different objects of one length")
        (a, n), (b, _) = pair
        others = [pid for rank, pid in found.items() if rank != 0]
        for pid in others:
            os.kill(pid, signal.SIGSTOP)
        try:
            first, second = bytes(held[a:a + n]), bytes(held[b:b + n])
            held[a:a + n], held[b:b + n] = second, first
        finally:
            for pid in others:
                os.kill(pid, signal.SIGCONT)
        print(f"race: two ciphertexts of {path} swapped under the {ranks} ranks", file=sys.stderr)
    rc = job.wait()
    sys.exit(rc if rc >= 0 else 128 - rc)


if __name__ == "__main__":
    main()

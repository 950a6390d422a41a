"""Opening a serial reader with errors a user can act on."""

from __future__ import annotations

import errno

import serial


class PortError(Exception):
    """The port could not be opened; the message names the port and what to do."""


def open_port(path: str, baud: int, read_timeout: float = 0.05) -> serial.Serial:
    """Open ``path`` at ``baud`` 8N1, exclusively (a second bridge on the same reader fails clearly)."""
    try:
        return serial.Serial(path, baudrate=baud, timeout=read_timeout, write_timeout=1.0, exclusive=True)
    except (serial.SerialException, OSError) as exc:
        raise PortError(describe_open_error(path, exc)) from exc
    except ValueError as exc:
        raise PortError(f"cannot open {path}: {exc}; check --baud") from exc


def describe_open_error(path: str, exc: OSError) -> str:
    code = exc.errno
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        return (
            f"cannot open {path}: no such device; check that the reader is plugged in and the --port path "
            f"(stable names are under /dev/serial/by-id/)"
        )
    if code in (errno.EACCES, errno.EPERM):
        return (
            f"cannot open {path}: permission denied; add the user to the dialout group "
            f"(sudo usermod -aG dialout $USER, then log in again)"
        )
    if code in (errno.EBUSY, errno.EAGAIN):
        return (
            f"cannot open {path}: in use by another program; stop it "
            f"(another hub-bridge, a serial console, ModemManager) and try again"
        )
    if code == errno.ENOTTY:
        return f"cannot open {path}: not a serial device; check --port"
    detail = exc.strerror or str(exc)
    return f"cannot open {path}: {detail}; check --port and that the reader is connected"

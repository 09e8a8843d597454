"""svpms_sandbox: a local stand-in for SVPMS production (moto_server + a service twin).

    from svpms_sandbox import Sandbox
    sb = Sandbox(state_dir, moto_port, twin_port)
    sb.start(); sb.inject('high_error_rate'); sb.status(); sb.boto('ecs'); sb.stop()
"""

from .constants import FAULTS
from .core import Sandbox, UsageError
from .procs import SandboxError

__all__ = ['Sandbox', 'SandboxError', 'UsageError', 'FAULTS']

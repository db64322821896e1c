"""What SOAR and MAIL share: the policy/critic interface, sampling, exact tabular solvers,
SAC with a critic ensemble, demonstrations, experts and the run harness."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("soar-mail")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

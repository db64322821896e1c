"""Multi-agent imitation learning from expert queries: BC, MAIL-BRO, MURMAIL, MAIL-WARM."""

from agents import __version__
from agents.interface import PolicyProfile
from agents.tabular_demonstrations import TabularDemonstrations
from mail.bc import bc, expert_dataset
from mail.mail_bro import mail_bro
from mail.mail_warm import mail_warm
from mail.murmail import murmail
from mail.oracle import ExpertOracle
from mail.result import MailHistory, MailResult

__all__ = [
    "ExpertOracle",
    "MailHistory",
    "MailResult",
    "PolicyProfile",
    "TabularDemonstrations",
    "__version__",
    "bc",
    "expert_dataset",
    "mail_bro",
    "mail_warm",
    "murmail",
]

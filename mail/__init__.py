"""Multi-agent imitation learning from expert queries: BC, MAIL-BRO, MURMAIL."""

from mail.bc import ExpertDataset, bc, expert_dataset
from mail.mail_bro import mail_bro
from mail.murmail import murmail
from mail.oracle import ExpertOracle
from mail.result import MailHistory, MailResult

__all__ = [
    "ExpertDataset",
    "ExpertOracle",
    "MailHistory",
    "MailResult",
    "bc",
    "expert_dataset",
    "mail_bro",
    "murmail",
]

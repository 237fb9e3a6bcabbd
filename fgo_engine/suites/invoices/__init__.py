"""The *invoices* suite: a LogisticsQA-like task set of UBL 2.1 invoices.

Each task is one generated invoice (Turkish, English, Spanish or Italian) of roughly
2,000–4,000 cl100k tokens; the agent must reply with the transport reference number.
The reference sits in one of six places (see ``PLACEMENTS``) and comes in varied
formats; every document also carries look-alike identifiers (invoice number, order
and contract references, UUID, plates, other document references) as distractors.

Scoring is exact match after trimming and collapsing whitespace: the expected answer
is the reference exactly as printed, so dashes, letters and inner spaces all count.

A task's ``category`` is its language; ``meta`` holds the placement, the format, the
split, the token count and the distractor values.
"""
from fgo_engine.suites.invoices.generate import count_tokens
from fgo_engine.suites.invoices.knowledge import KNOWLEDGE
from fgo_engine.suites.invoices.languages import FORMATS, LANGUAGES, NS_CAC, NS_CBC, NS_INVOICE, PLACEMENTS, TOKEN_RANGE
from fgo_engine.suites.invoices.skill import InvoicesSkill, ReadDocument, knowledge_for, read_document
from fgo_engine.suites.invoices.suite import InvoicesSuite, build_prompt

__all__ = ["FORMATS", "KNOWLEDGE", "LANGUAGES", "NS_CAC", "NS_CBC", "NS_INVOICE", "PLACEMENTS", "TOKEN_RANGE",
           "InvoicesSkill", "InvoicesSuite", "ReadDocument", "build_prompt", "count_tokens", "knowledge_for",
           "read_document"]

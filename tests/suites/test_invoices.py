"""The invoices suite: generation, the documents themselves, scoring, the agent run and the
simulated LLM's skill."""
from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ET
from collections import Counter

import pytest

import fgo_engine  # noqa: F401  (sets TIKTOKEN_CACHE_DIR before tiktoken loads)
from fgo_engine.errors import ConfigError
from fgo_engine.llm.sim.skills import cue_covered
from fgo_engine.suites import invoices as inv
from fgo_engine.suites.base import load_suite
from fgo_engine.suites.invoices import generate as inv_gen
from fgo_engine.suites.invoices import languages as inv_lang
from fgo_engine.suites.scoring import exact
from fgo_engine.types import Completion, Task

NS = {"cac": inv.NS_CAC, "cbc": inv.NS_CBC}
PLACEMENT_PATHS = {
    "despatch": "cac:DespatchDocumentReference/cbc:ID",
    "shipment": "cac:Delivery/cac:Shipment/cbc:ID",
    "consignment": "cac:Delivery/cac:Shipment/cac:Consignment/cbc:ID",
    "tracking": "cac:Delivery/cbc:TrackingID",
}
NOTE_LABELS = {"tr": "Taşıma Referans No:", "en": "Transport ref:",
               "es": "Ref. de transporte:", "it": "Rif. trasporto:"}


class FakeLLM:
    def __init__(self, reply):
        self.reply = reply
        self.calls: list[list[dict]] = []

    def __call__(self, messages, *, tools=None):
        self.calls.append(messages)
        text = self.reply(messages) if callable(self.reply) else self.reply
        return Completion(text=text)


@pytest.fixture(scope="module")
def suite() -> inv.InvoicesSuite:
    return inv.InvoicesSuite(seed=0)


@pytest.fixture(scope="module")
def tasks(suite) -> list[Task]:
    return suite.train_tasks() + suite.test_tasks()


@pytest.fixture(scope="module")
def skill() -> inv.InvoicesSkill:
    return inv.InvoicesSkill()


# --- generation -------------------------------------------------------------------------


def test_default_split_sizes_and_unique_ids(suite):
    train, test = suite.train_tasks(), suite.test_tasks()
    assert (len(train), len(test)) == (48, 219)
    ids = [t.id for t in train + test]
    assert len(set(ids)) == len(ids)
    assert {t.meta["split"] for t in train} == {"train"}
    assert {t.meta["split"] for t in test} == {"test"}


def test_same_seed_same_tasks_other_seed_other_tasks():
    def snapshot(seed):
        inv_gen._generate.cache_clear()  # regenerate instead of reading the cache
        s = inv.InvoicesSuite(seed=seed, n_train=6, n_test=6)
        return [(t.id, t.input, t.expected, t.category) for t in s.train_tasks() + s.test_tasks()]

    first = snapshot(7)
    assert snapshot(7) == first
    assert snapshot(8) != first


def test_languages_and_placements_all_present(tasks, suite):
    assert set(Counter(t.category for t in tasks)) == set(inv.LANGUAGES)
    assert set(Counter(t.meta["placement"] for t in tasks)) == set(inv.PLACEMENTS)
    assert len(inv.PLACEMENTS) >= 6
    # 48 training tasks: every (language, placement) pair exactly twice.
    pairs = Counter((t.category, t.meta["placement"]) for t in suite.train_tasks())
    assert len(pairs) == 24 and set(pairs.values()) == {2}


def test_formats_vary(tasks):
    refs = [t.expected for t in tasks]
    assert any(" " in r for r in refs)
    assert any("-" in r for r in refs)
    assert any(r.isdigit() for r in refs)
    assert any(re.search(r"[A-Z]", r) and re.search(r"\d", r) and r.isalnum() for r in refs)
    assert any(r[:3] in {"TR-", "WB-", "CP-", "DDT"} for r in refs)


def test_token_length_of_every_document(tasks):
    import tiktoken

    enc = tiktoken.get_encoding("cl100k_base")
    lengths = [len(enc.encode(t.input)) for t in tasks]
    assert min(lengths) >= 2000 and max(lengths) <= 4000, (min(lengths), max(lengths))
    assert all(t.meta["lines"] >= 2 for t in tasks)


def test_xml_parses_and_holds_the_reference_at_its_placement(tasks):
    for t in tasks:
        root = ET.fromstring(t.input.encode("utf-8"))
        assert root.tag == f"{{{inv.NS_INVOICE}}}Invoice"
        assert len(root.findall("cac:InvoiceLine", NS)) == t.meta["lines"]
        assert len(root.findall("cac:AccountingSupplierParty/cac:Party/cac:PostalAddress", NS)) == 1
        assert root.find("cac:TaxTotal/cac:TaxSubtotal", NS) is not None
        assert root.find("cac:PaymentMeans", NS) is not None
        ref, placement = t.expected, t.meta["placement"]
        assert t.input.count(ref) == 1, t.id  # one right answer
        if placement in PLACEMENT_PATHS:
            assert root.findtext(PLACEMENT_PATHS[placement], namespaces=NS) == ref, t.id
        elif placement == "note":
            notes = [n.text or "" for n in root.findall("cbc:Note", NS)]
            assert any(f"{NOTE_LABELS[t.category]} {ref};" in n for n in notes), t.id
        else:
            docs = {d.findtext("cbc:ID", namespaces=NS): d.findtext("cbc:DocumentType",
                                                                     namespaces=NS)
                    for d in root.findall("cac:AdditionalDocumentReference", NS)}
            assert docs[ref] in inv_lang._LANGS[t.category].transport_doc_types, t.id
        if placement != "shipment":
            assert root.findtext(PLACEMENT_PATHS["shipment"], namespaces=NS) == "1"


def test_documents_are_written_in_their_language(tasks):
    currency = {"tr": "TRY", "en": "GBP", "es": "EUR", "it": "EUR"}
    column = {"tr": 0, "en": 1, "es": 2, "it": 3}
    for t in tasks:
        lang = inv_lang._LANGS[t.category]
        root = ET.fromstring(t.input.encode("utf-8"))
        assert {n.get("languageID") for n in root.findall("cbc:Note", NS)} == {t.category}
        assert root.findtext("cbc:DocumentCurrencyCode", namespaces=NS) == currency[t.category]
        supplier = root.findtext("cac:AccountingSupplierParty/cac:Party/cac:PartyName/cbc:Name",
                                 namespaces=NS)
        assert supplier in lang.suppliers
        names = {p[column[t.category]] for p in inv_lang._PRODUCTS}
        items = [i.text for i in root.findall("cac:InvoiceLine/cac:Item/cbc:Name", NS)]
        assert items and set(items) <= names
        assert lang.payment_terms.split("{")[0] in t.input or lang.instruction in t.input


def test_every_document_carries_distractors(tasks):
    for t in tasks:
        d = t.meta["distractors"]
        values = [d["invoice_number"], d["order_reference"], d["uuid"],
                  d["contract_reference"], *d["plates"]]
        assert len(d["plates"]) >= 1
        for value in values:
            assert value in t.input
            assert value != t.expected
            assert exact(value, t.expected) == 0.0


def test_exact_scorer_accepts_whitespace_variants_only(tasks):
    spaced = next(t for t in tasks if " " in t.expected)
    assert exact(f"  {spaced.expected}\n", spaced.expected) == 1.0
    assert exact(spaced.expected.replace(" ", "  "), spaced.expected) == 1.0
    assert exact(spaced.expected.replace(" ", ""), spaced.expected) == 0.0
    dashed = next(t for t in tasks if "-" in t.expected)
    assert exact(dashed.expected.replace("-", ""), dashed.expected) == 0.0
    assert exact(dashed.meta["distractors"]["order_reference"], dashed.expected) == 0.0


def test_options_are_checked():
    with pytest.raises(ConfigError, match="n_train"):
        inv.InvoicesSuite(n_train=0)
    with pytest.raises(ConfigError, match="unknown option"):
        inv.InvoicesSuite(colour="red")
    small = load_suite("invoices", seed=3, n_train=4, n_test=5)
    assert (len(small.train_tasks()), len(small.test_tasks())) == (4, 5)
    assert small.name == "invoices" and small.module_kind == "instruction"


# --- the agent run ----------------------------------------------------------------------


def test_run_agent_frames_the_document_and_scores_the_reply(suite):
    task = suite.train_tasks()[0]
    module = suite.initial_module()
    llm = FakeLLM(f"Looking at the document.\nAnswer: {task.expected}")
    traj = suite.run_agent(task, module, llm)
    assert traj.success and traj.score == 1.0 and traj.answer == task.expected
    assert [s.kind for s in traj.steps] == ["answer"]
    system, user = llm.calls[0]
    assert system == {"role": "system", "content": module.text}
    assert user["role"] == "user" and task.input in user["content"]
    assert user["content"].endswith("Reply with: Answer: <reference>")


@pytest.mark.parametrize("reply", ["", "I am not sure.", "Answer:", "Answer: SIP-0000-000000",
                                   "\x00\x01 garbage ```"])
def test_run_agent_fails_cleanly_on_bad_replies(suite, reply):
    task = suite.train_tasks()[1]
    traj = suite.run_agent(task, suite.initial_module(), FakeLLM(reply))
    assert not traj.success and traj.score == 0.0 and traj.error is None


def test_initial_module_is_short_and_covers_little(suite):
    module = suite.initial_module()
    lines = module.text.splitlines()
    assert not lines[0].startswith("- ") and len(module.rule_lines()) >= 2
    covered = [k for k in inv.KNOWLEDGE.values() if cue_covered(module.text, k)]
    assert 1 <= len(covered) <= 3


# --- the simulated LLM's skill ----------------------------------------------------------


def test_knowledge_items_are_well_formed_and_distinct():
    items = list(inv.KNOWLEDGE.values())
    assert 10 <= len(items) <= 14
    for item in items:
        assert all(cue == cue.lower() and cue in item.text.lower() for cue in item.cue), item.key
        # An item's own sentence must not also satisfy another item's cues.
        others = [o.key for o in items if o.key != item.key and cue_covered(item.text, o)]
        assert others == [], (item.key, others)


def test_skill_recognizes_invoices_only(skill, suite):
    task = suite.train_tasks()[0]
    assert skill.recognizes(task.input)
    assert skill.recognizes(inv.build_prompt(task))
    assert not skill.recognizes("Put a clean mug on the desk.")


def test_skill_needs_the_placement_item(skill, tasks):
    for t in tasks:
        keys = [k.key for k in skill.needs(t.input)]
        assert keys == [k.key for k in skill.needs(inv.build_prompt(t))]
        assert f"invoices.{t.meta['placement']}" in keys
        assert "invoices.distractors" in keys
        assert (f"invoices.lang.{t.category}" in keys) == (t.meta["placement"] in ("note",
                                                                                   "docref"))
        assert ("invoices.format" in keys) == bool(re.search(r"[ -]", t.expected))
        assert 2 <= len(keys) <= 4


def _act(skill, task, **kw):
    messages = [{"role": "system", "content": "x"},
                {"role": "user", "content": inv.build_prompt(task)}]
    rng = random.Random(task.id)
    return skill.act(messages, messages[1]["content"], rng=rng, **kw)


def _accuracy(skill, tasks, **kw):
    hits = 0
    for t in tasks:
        answer = _act(skill, t, **kw).rsplit("Answer:", 1)[1]
        hits += exact(answer, t.expected) == 1.0
    return hits / len(tasks)


def test_competent_agent_is_right(skill, suite):
    assert _accuracy(skill, suite.train_tasks(), competent=True, missing=[]) >= 0.95


def test_agent_missing_the_placement_item_is_mostly_wrong(skill, suite):
    wrong = 0
    for t in suite.train_tasks():
        missing = [inv.KNOWLEDGE[f"invoices.{t.meta['placement']}"]]
        reply = _act(skill, t, competent=False, missing=missing)
        answer = reply.rsplit("Answer:", 1)[1].strip()
        wrong += exact(answer, t.expected) == 0.0
        assert answer in t.input  # a plausible answer: an identifier from the same document
    assert wrong / len(suite.train_tasks()) >= 0.9


def test_agent_missing_only_the_format_item_breaks_the_format(skill, tasks):
    fmt = inv.KNOWLEDGE["invoices.format"]
    for t in [t for t in tasks if re.search(r"[ -]", t.expected)][:40]:
        answer = _act(skill, t, competent=False, missing=[fmt]).rsplit("Answer:", 1)[1].strip()
        assert answer != t.expected
        assert re.sub(r"[ -]", "", answer) == re.sub(r"[ -]", "", t.expected)

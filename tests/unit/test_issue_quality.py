"""Issues a support lead can act on: buckets for what is not an issue, per-language groups, k that
does not collapse on flat silhouette curves, no catch-all issue, phrase names without brands or
sign-offs, outliers counted; agent assist that is safe to paste."""

from __future__ import annotations

import numpy as np
import pytest

from supportlens.domain import assist, clustering
from supportlens.domain.clustering import Corpus, bucket_of, brand_words, cluster_corpus, issue_name, key_phrases
from supportlens.domain.issues_model import CentroidsModel


@pytest.mark.parametrize("text, language, bucket", [
    ("Thank you so much, you guys are awesome!", "en", "gratitude"),
    ("thanks", "unknown", "chatter"),
    ("DM sent", "en", "follow-up"),
    ("Just sent you a DM with the details", "en", "follow-up"),
    ("hi there", "en", "greeting"),
    ("Yep", "unknown", "chatter"),
    ("Happy Halloween! Got my $3 boorito in costume #boorito", "en", "promotion"),
    ("you are the worst, wtf", "en", "rant"),
    ("Gracias por la ayuda, el pedido no llega", "non-en", "language:es"),
    ("Okay, danke für die Info", "non-en", "language:de"),
    ("buna ziua, se pare ca nu merge accesul pentru contul meu", "non-en", "language:ro"),  # no diacritics
    ("アマゾンの配送が遅れています", "unknown", "language:ja"),
    ("I was charged twice for my order, please refund", "en", None),
    ("thanks but my package still has not arrived", "en", None),
    ("I sent a DM about my refund three days ago and nothing", "en", None),
    ("My Halloween costume order was never delivered", "en", None),
    ("Its working again", "non-en", "chatter"),  # ASCII without a foreign word: English the word count missed
    ("app crashes on login", "non-en", None),
])
def test_buckets(text, language, bucket):
    assert bucket_of(text, language) == bucket


def test_names_are_phrases_without_brands_signoffs_or_filler():
    texts = (["kind regards, my package was not delivered yet, dear amazon"] * 6 + ["package not delivered again AmazonHelp"] * 4
             + ["regards, nice, I was charged twice on my card for years"] * 6 + ["nice: charged twice this month, kind regards, years"] * 4)
    labels = np.array([0] * 10 + [1] * 10)
    brands = brand_words(["AmazonHelp", "Uber_Support"])
    assert {"amazon", "amazonhelp", "uber"} <= brands and "support" not in brands and "help" not in brands
    phrases = key_phrases(texts, labels, 2, brands=brands)
    names = [issue_name(p) for p in phrases]
    assert "delivered" in names[0] and "charged twice" in names[1]
    for p in phrases:
        assert not any(w in {"regards", "dear", "kind", "amazon", "amazonhelp", "nice", "years"} for phrase in p for w in phrase.split())
    assert all(1 <= len(n.replace(",", " ").split()) <= 4 for n in names)


def test_names_say_one_thing_once_and_read_words_whole():
    """Seen on TWCS: "flight, flights", "ms, mins" (one pasted traceroute repeating "70 ms"), "pre, ww"
    ("pre-order", "WW2" cut in pieces) and "ll, nice" (the curly apostrophe of "we’ll")."""
    texts = (["my flight was delayed again", "two flights cancelled this week", "flight delayed, missed my connection",
              "the flights are always delayed"] * 3
             + ["1 70 ms 70 ms 70 ms 71 ms 70 ms 69 ms timed out 70 ms 70 ms", "2 69 ms 69 ms 70 ms 70 ms 69 ms 69 ms"]
             + ["wifi keeps dropping at home", "the wifi is down since noon", "wifi dropping every hour"] * 3
             + ["my pre-order of WW2 never shipped", "pre-order WW2 still not shipped", "WW2 pre-order not shipped"] * 3
             + ["we’ll see, nice try", "we’ll wait, nice", "nice, we’ll see"] * 3)
    labels = np.array([0] * 12 + [1] * 11 + [2] * 9 + [3] * 9)
    phrases = key_phrases(texts, labels, 4)
    names = [issue_name(p) for p in phrases]
    flight = {w for p in phrases[0] for w in p.split()}
    assert not ({"flight", "flights"} <= flight), phrases[0]
    assert "wifi" in names[1] and "ms" not in names[1].replace(",", " ").split(), phrases[1]
    assert "pre-order" in {w for p in phrases[2] for w in p.split()} and "pre" not in names[2].replace(",", " ").split(), phrases[2]
    assert "ll" not in {w for p in phrases[3] for w in p.split()}, phrases[3]


def test_top_companies_list_known_companies_before_unknown():
    rng = np.random.default_rng(3)
    texts = ["my parcel was not delivered"] * 40
    vectors = rng.normal([3, 0, 0, 0], 0.2, size=(40, 4)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    companies = ["unknown"] * 25 + ["AmazonHelp"] * 10 + ["UPSHelp"] * 5
    (issue,) = [i for i in cluster_corpus(_corpus(texts, vectors, companies=companies), None, "v1", k=1).issues]
    assert [c["company"] for c in issue.top_companies] == ["AmazonHelp", "UPSHelp", "unknown"]
    assert [c["count"] for c in issue.top_companies] == [10, 5, 25]


def test_flat_silhouette_does_not_collapse_to_two_issues():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 32)).astype(np.float32)  # no structure at all: a flat curve
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels, centroids, k, scores = clustering.fit_clusters(vectors)
    assert k >= clustering.k_floor(3000) - 1 >= 15 and len(scores) > 5
    assert np.bincount(labels).max() <= clustering.MAX_ISSUE_SHARE * 3000 + 1


def test_oversized_issue_is_split_and_near_duplicates_merged():
    rng = np.random.default_rng(1)
    a = rng.normal([5, 0, 0, 0], 1, size=(600, 4))
    b = rng.normal([0, 5, 0, 0], 0.3, size=(100, 4))
    vectors = (np.vstack([a, b]) / np.linalg.norm(np.vstack([a, b]), axis=1, keepdims=True)).astype(np.float32)
    labels = np.array([0] * 600 + [1] * 50 + [2] * 50)  # issue 0 holds 86 %; 1 and 2 are the same issue
    out = clustering.merge_and_split(vectors, labels, max_share=0.5)
    assert out[600:].min() == out[600:].max()  # 1 and 2 merged
    assert np.bincount(out).max() <= 0.5 * len(out)  # the big one split


def _corpus(texts, vectors, companies=None, languages=None):
    n = len(texts)
    return Corpus(ticket_ids=[f"t{i}" for i in range(n)], texts=texts, companies=companies or ["acme"] * n,
                  sentiments=["neutral"] * n, abusive=np.zeros(n, dtype=bool), days=["2024-06-01"] * n,
                  vectors=vectors, languages=languages or [])


def _three_topics(topics: dict[int, str], rng) -> tuple[list[str], list[np.ndarray]]:
    """300 texts, 100 per topic, each topic's vectors around its own axis."""
    texts, vectors = [], []
    for i in range(300):
        t = i % 3
        texts.append(f"{topics[t]} case {i}")
        v = np.zeros(8)
        v[t] = 3
        vectors.append(v + rng.normal(0, 0.5, 8))
    return texts, vectors


def test_cluster_corpus_keeps_buckets_apart_and_counts_every_ticket_once():
    rng = np.random.default_rng(2)
    texts, vectors = _three_topics({0: "my parcel was not delivered", 1: "charged twice on my card", 2: "wifi keeps dropping at home"}, rng)
    texts += ["thank you so much!"] * 30 + ["DM sent"] * 20 + ["gracias por la ayuda con el pedido"] * 10
    vectors += [rng.normal(0, 1, 8) for _ in range(60)]
    vectors = np.array(vectors, dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    result = cluster_corpus(_corpus(texts, vectors), None, "v1")
    assert result.buckets == {"gratitude": 30, "follow-up": 20, "language:es": 10}
    assert sum(i.size for i in result.issues) == len(texts) and all(result.assigned)
    buckets = [i for i in result.issues if i.kind == "bucket"]
    assert {i.issue_id for i in buckets} == {"bucket-gratitude", "bucket-follow-up", "bucket-language-es"}
    assert all(i.to_item("v1", "now")["kind"] == "bucket" and not i.emerging for i in buckets)
    issues = [i for i in result.issues if i.kind == "issue"]
    assert result.clustered == 300 and result.k == len(issues) >= 3 and 0 <= result.outlier_share < 0.3
    assert result.model.kinds[: len(issues)] == ["issue"] * len(issues)
    back = CentroidsModel.from_bytes(result.model.to_bytes())
    assert back.kinds == result.model.kinds and back.outlier_floor == pytest.approx(result.outlier_floor, abs=1e-6)


def test_tickets_dated_at_upload_never_make_an_issue_emerge():
    """An Endava export (no timestamps) lands on its upload day: a new user's report had every issue
    'emerging'. Growth and emerging come from event time only."""
    from datetime import date, timedelta

    rng = np.random.default_rng(4)
    latest = date(2024, 6, 30)
    texts, vectors, days, undated = [], [], [], []
    for i in range(120):  # a steady issue with event times over 20 days
        texts.append(f"wifi keeps dropping at home {i}")
        vectors.append(rng.normal([3, 0, 0, 0], 0.3))
        days.append((latest - timedelta(days=i % 20)).isoformat())
        undated.append(False)
    for i in range(60):  # an export without dates: all on the upload day
        texts.append(f"password reset link expired {i}")
        vectors.append(rng.normal([0, 3, 0, 0], 0.3))
        days.append(latest.isoformat())
        undated.append(True)
    vectors = np.array(vectors, dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    base = _corpus(texts, vectors)
    base.days = days

    def issues(flags, previous=None):
        base.upload_dated = None if flags is None else np.array(flags)
        return [i for i in cluster_corpus(base, previous, "v1").issues if i.kind == "issue"]

    # Growth against the issue's own baseline: 60 event-time tickets all of the latest day are news ...
    assert any(i.emerging for i in issues(None) if "password" in i.label)
    # ... the same 60 dated at their upload are not, and the steady issue is not either.
    assert not any(i.emerging for i in issues(undated))
    # A clustering that knew neither: every issue is new; only those of event-time tickets emerge as new.
    previous = cluster_corpus(_corpus(["refund never came"] * 40, np.tile(np.eye(4, dtype=np.float32)[2], (40, 1))), None, "v0").model
    found = issues(undated, previous)
    assert all(i.is_new for i in found)
    assert all(i.emerging == ("password" not in i.label) for i in found), [(i.label, i.emerging) for i in found]


# ---------------------------------------------------------------- assist safety
def test_reply_cleaning_strips_thread_markers_initials_link_stubs_and_greeting_names():
    assert assist.clean_reply("@cust (1/2) Hola Ezequiel! We will check this for you https://t.co/abc ^JD") == \
        "Hola! We will check this for you"
    assert assist.clean_reply("So sorry! Please DM us your details. *ErikS") == "So sorry! Please DM us your details."
    assert assist.clean_reply("Hi Sarah, we are on it… t.co/xyz -JD") == "Hi, we are on it"
    assert not assist.brand_safe("Spotify will take a look backstage", frozenset({"spotify"}))
    assert not assist.brand_safe("Ask for Mr Smith at the desk", frozenset())
    assert assist.brand_safe("Sorry about the wait, please DM us your order number", frozenset({"spotify"}))
    # A name closing a sentence is the customer's too (a new user got "Sorry to hear that, Davina").
    assert assist.clean_reply("Sorry to hear that, Davina. The delay was due to congestion.") == \
        "Sorry to hear that. The delay was due to congestion."
    assert assist.clean_reply("We're sorry, Anthony! Did you order light cheese?") == "We're sorry! Did you order light cheese?"
    assert assist.clean_reply("We can help with that, thanks. See you Friday, Team!") == "We can help with that, thanks. See you Friday, Team!"
    assert not assist.brand_safe("Sorry to hear that, Davina.", frozenset())


def test_a_reply_that_pointed_at_a_link_is_not_recommended():
    """Without its link "Send us a note at <link> so ..." reads "Send us a note at so ...": not safe to paste."""
    assert assist.relies_on_link("Send us a note at https://t.co/abc so our team can connect.")
    assert assist.relies_on_link("Please reach out to us by phone here: https://t.co/x")
    assert assist.relies_on_link("Check https://t.co/a for updates")
    assert not assist.relies_on_link("Sorry! Send us a DM and we will help. https://t.co/xyz")
    assert not assist.relies_on_link("Try reinstalling the app, that fixes it.")
    # What the index holds: cleaned texts, their links already removed (a new user got the first as a reply)
    for hole in ("Send us a note via so we can assist.", "Please reach out here:", "DM us at: and we'll look.", "Please visit."):
        assert assist.relies_on_link(hole), hole
    for fine in ("We're here to help.", "We'll call at 5:30 to confirm.", "We're glad our team was able to help.",
                 "Sorry about that: a fix is on its way.", "Arrive at the gate early and we'll help."):
        assert not assist.relies_on_link(fine), fine
    cleaned = _index({"b1": assist.Reply("rb1", "Send us a note via so we can assist with the app.")})
    rec = assist.recommend(unit(1, 0.1, 0), cleaned, _embed, company="AppleSupport")
    assert "via so" not in rec.reply
    # AppleSupport's only reply now needs its link: another company's link-free reply is recommended instead.
    index = _index({"b1": assist.Reply("rb1", "Please update here: https://t.co/upd and restart your iPhone.")})
    rec = assist.recommend(unit(1, 0.1, 0), index, _embed, company="AppleSupport")
    assert rec.same_company is False and "update here" not in rec.reply and "reinstalling" in rec.reply


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def _index(replies_override=None):
    rows = [("a1", "app crashes on start", "issue-app", "SpotifyCares", unit(1, 0.1, 0)),
            ("a2", "app keeps crashing", "issue-app", "SpotifyCares", unit(1, 0.2, 0)),
            ("b1", "app crash after update", "issue-app", "AppleSupport", unit(1, 0.05, 0)),
            ("c1", "lost my luggage", "issue-bags", "Delta", unit(0, 1, 0.1)),
            ("p1", "my account is locked", "issue-account", "PayPal", unit(0, 0, 1))]  # a brand of the window, no reply
    replies = {"a1": assist.Reply("ra1", "We'll take a look backstage at Spotify for you. ^JD"),
               "a2": assist.Reply("ra2", "Sorry! Try reinstalling the app, that fixes it. -KC"),
               "b1": assist.Reply("rb1", "Hi Jane, please update to the latest iOS and restart your iPhone."),
               "c1": assist.Reply("rc1", "PayPal will check your account for you."), **(replies_override or {})}
    ids, texts, issues, companies, vectors = zip(*rows)
    index = assist.build_index(list(ids), list(texts), list(issues), list(companies), ["2024-06-01"] * 5, np.vstack(vectors),
                               replies, version="v1", embedding_id="t")
    index.similarity_floor = 0.3
    return index


def _embed(texts):
    return np.vstack([unit(1, 0, 0) if "app" in t.lower() or "update" in t.lower() else unit(0, 0, 1) for t in texts])


def test_recommend_prefers_the_same_company_and_never_names_another_brand():
    index = _index()
    rec = assist.recommend(unit(1, 0.1, 0), index, _embed, company="AppleSupport")
    assert rec.company == "AppleSupport" and rec.same_company is True and "Jane" not in rec.reply
    rec = assist.recommend(unit(1, 0.1, 0), index, _embed, company="SpotifyCares")
    assert rec.company == "SpotifyCares" and rec.same_company is True  # its own brand may be named in its own replies
    rec = assist.recommend(unit(1, 0.1, 0), index, _embed)  # unknown company: no reply naming any brand
    assert "spotify" not in rec.reply.lower() and "backstage" not in rec.reply
    assert all("spotify" not in a["reply"].lower() for a in rec.alternatives)
    # Lost luggage: the only close reply names PayPal; nothing safe is close enough.
    assert assist.recommend(unit(0, 1, 0.1), index, _embed, company="Delta") is None


def test_classify_says_no_confident_match_for_a_text_like_nothing_seen():
    index = _index()
    model = CentroidsModel("v1", ["issue-app", "issue-bags", "bucket-gratitude"], ["app crash", "lost luggage", "thank-yous"],
                           np.vstack([unit(1, 0.1, 0), unit(0, 1, 0.1), unit(0.3, 0.3, 1)]), embedding_id="t",
                           kinds=["issue", "issue", "bucket"], outlier_floor=0.4)
    sure = assist.classify(unit(1, 0.1, 0), model, index)
    assert sure.confident and sure.issue_id == "issue-app" and sure.confidence > 0.9
    odd = assist.classify(unit(0, 0, 1), model, index)  # far from every past ticket
    assert not odd.confident and odd.issue_id is None and odd.label == assist.NO_CONFIDENT_MATCH
    assert odd.nearest["issue_id"] and odd.to_dict()["threshold"] == assist.CLASSIFY_MIN_CONFIDENCE
    thanks = assist.classify(unit(0.3, 0.3, 1), model, index, text="thank you so much!")
    assert thanks.kind == "bucket" and thanks.issue_id == "bucket-gratitude" and thanks.to_dict()["by_rule"] is True
    assert sure.to_dict()["by_rule"] is False


def test_names_agents_sign_with_are_people_not_words():
    replies = ["So sorry! Please DM us. -Becky", "Hopefully soon -Becky", "We can help ^JD", "Checking ^JD",
               "Glad to help -Bill", "Any time -Bill", "Once only -Ana"]
    customers = ["Becky is very nice", "thank you Becky!", "my bill is wrong again", "Bill me later", "Ana helped"]
    # Becky: signed twice, written as a name; Bill: "my bill" wins; JD: no customer wrote it; Ana: signed once
    assert assist.signature_names(replies, customers) == {"becky"}


def test_an_issue_is_not_named_after_the_agent_its_customers_thank():
    texts, vectors = _three_topics({0: "Becky was so kind about my burrito bowl order", 1: "charged twice on my card",
                                    2: "wifi keeps dropping at home"}, np.random.default_rng(4))
    vectors = np.array(vectors, dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    corpus = _corpus(texts, vectors, companies=["ChipotleTweets"] * 300)
    unsigned = cluster_corpus(corpus, None, "v1")
    assert any("becky" in p for i in unsigned.issues for p in i.top_phrases)  # a name is the most specific word
    corpus.replies = {f"t{i}": assist.Reply(f"r{i}", "Sorry about that, we will make it right -Becky") for i in range(0, 300, 3)}
    signed = cluster_corpus(corpus, None, "v1")
    assert signed.issues and not any("becky" in i.label or any("becky" in p for p in i.top_phrases) for i in signed.issues)


def test_a_title_and_the_name_after_it_name_no_issue():
    # Bitext's invoice requests say "Mr. Smith" and "Mrs Jones": the issue was named "mr smith"
    texts = ([f"please send the invoice for Mr. Smith, order {i}" for i in range(8)]
             + [f"I need a copy of the invoice Mrs Jones asked for, {i}" for i in range(8)])
    phrases = key_phrases(texts, np.zeros(len(texts), dtype=int), 1)[0]
    assert phrases and "invoice" in " ".join(phrases)
    assert not {w for p in phrases for w in p.split()} & {"mr", "mrs", "smith", "jones"}


def test_similar_and_recommend_skip_tickets_that_state_no_problem():
    # A lost-package complaint got "Nope, I've got my package thanks" as its most similar ticket and
    # "Thank you for keeping us posted!" as a reply to reuse (cold trial, 2026-12-02)
    rows = [("t1", "Nope, I've got my package thanks", "bucket-gratitude", unit(0, 1, 0.01)),
            ("t2", "DM sent", "bucket-follow-up", unit(0, 1, 0.02)),
            ("t3", "my package never arrived", "issue-parcel", unit(0, 1, 0.2)),
            ("t4", "parcel lost in transit", "issue-parcel", unit(0, 1, 0.3))]
    replies = {"t1": assist.Reply("r1", "Thank you for keeping us posted!"), "t2": assist.Reply("r2", "Thanks, we got your DM."),
               "t3": assist.Reply("r3", "Sorry! Please send us the tracking number in a DM."),
               "t4": assist.Reply("r4", "We will open a claim with the carrier for you.")}
    ids, texts, issues, vectors = zip(*rows)
    index = assist.build_index(list(ids), list(texts), list(issues), ["UPSHelp"] * 4, ["2024-06-01"] * 4, np.vstack(vectors),
                               replies, version="v1", embedding_id="t")
    index.similarity_floor = 0.3
    found = assist.similar(unit(0, 1, 0), index, k=4)
    assert [m["ticket_id"] for m in found] == ["t3", "t4"]
    rec = assist.recommend(unit(0, 1, 0), index, lambda texts: np.vstack([unit(0, 1, 0)] * len(texts)))
    assert rec.reply_ticket_id in {"r3", "r4"} and {a["reply_ticket_id"] for a in rec.alternatives} <= {"r3", "r4"}


def test_examples_say_what_the_issue_name_says():
    # "credit, charged" showed three customer-service rants nearest its centroid
    rng = np.random.default_rng(5)
    texts = [f"customer service was rude to me, call {i}" for i in range(40)] + [f"I was charged twice on my credit card, {i}" for i in range(20)]
    base = np.zeros(8)
    base[0] = 1
    vectors = np.array([base + rng.normal(0, 0.01 if i < 40 else 0.3, 8) for i in range(60)], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    members = np.arange(60)
    sims = vectors @ (vectors.mean(axis=0) / np.linalg.norm(vectors.mean(axis=0)))
    assert all(i < 40 for i in members[np.argsort(-sims)[:3]])  # the nearest three are the rants
    picked = clustering._examples(members, sims, texts, "credit, charged")
    assert len(picked) == 3 and all(i >= 40 for i in picked)
    assert list(clustering._examples(members, sims, texts, "no such phrase")) == list(members[np.argsort(-sims, kind="stable")[:3]])

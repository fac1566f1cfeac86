"""Dynamic rules replayed on a log of passes (bench/passlog.py)."""
import pytest

from asr.lookahead import DynamicLookahead, parse_policy
from bench.passlog import errors, examples, label, record, simulate, train

NEVER = DynamicLookahead(threshold=1.01, sure=1.01, max_ms=1e9)  # waits for the log policy


def _w(key, start, end, prob, since, attached=False):
    return [key, start, end, end, prob, False, attached, since]


def _log():
    """One utterance: "uh" (sure) read as "a" from the third pass on; the log policy commits
    both words at the fourth pass, and a fifth sees nothing left."""
    return [[
        {"t": 1.0, "base": 0, "n": 0, "words": [_w("uh", 0.3, 0.5, 0.95, 1.0), _w("cat", 0.5, 0.8, 0.9, 1.0)]},
        {"t": 1.3, "base": 0, "n": 0, "words": [_w("uh", 0.3, 0.5, 0.95, 1.0), _w("cat", 0.5, 0.8, 0.9, 1.0)]},
        {"t": 1.6, "base": 0, "n": 0, "words": [_w("a", 0.3, 0.5, 0.6, 1.6), _w("cat", 0.5, 0.8, 0.9, 1.6)]},
        {"t": 2.4, "base": 0, "n": 2, "words": [_w("a", 0.3, 0.5, 0.6, 1.6), _w("cat", 0.5, 0.8, 0.9, 1.6)]},
        {"t": 2.7, "base": 2, "n": 0, "words": []},
    ]]


def test_a_quick_rule_counts_the_readings_it_committed_too_early():
    r = simulate(_log(), parse_policy("dynamic"), due=False)
    # at 1.3 s both words had held 300 ms with 800 / 500 ms after them: "uh" is the wrong reading
    assert r == {"words": 2, "changed": 1, "p50_ms": 650.0, "p90_ms": 770.0}
    # they were due at 1.21 s (held 200 ms): the block ending at 1.3 s brings frames up to 1.29 s
    assert simulate(_log(), parse_policy("dynamic")) == {"words": 2, "changed": 1, "p50_ms": 640.0, "p90_ms": 760.0}


def test_a_due_pass_commits_on_the_block_that_brings_the_words_time():
    """An unsure word (0.6) needs 867 ms after it under the hand rule: due at 1.38 s, which the
    block ending at 1.4 s brings, not at the next logged pass (1.59 s)."""
    cat = _w("cat", 0.3, 0.5, 0.6, 0.69)
    log = [[{"t": t, "base": 0, "n": n, "words": [cat]} for t, n in ((0.99, 0), (1.29, 0), (1.59, 1))]
           + [{"t": 1.89, "base": 1, "n": 0, "words": []}]]
    assert simulate(log, parse_policy("dynamic"))["p50_ms"] == pytest.approx(880.0)
    assert simulate(log, parse_policy("dynamic"), due=False)["p50_ms"] == pytest.approx(1090.0)


def _reread_log(second):
    """"uh" read at 1.0 s, then `second` at the next logged pass, 600 ms later."""
    since = 1.0 if second == "uh" else 1.6
    return [[{"t": 1.0, "base": 0, "n": 0, "words": [_w("uh", 0.3, 0.5, 0.95, 1.0)]},
             {"t": 1.6, "base": 0, "n": 0, "words": [_w(second, 0.3, 0.5, 0.95, since)]},
             {"t": 2.2, "base": 0, "n": 1, "words": [_w(second, 0.3, 0.5, 0.95, since)]},
             {"t": 2.5, "base": 1, "n": 0, "words": []}]]


def test_a_due_pass_reads_no_word_the_next_logged_pass_reads_otherwise():
    # "uh" is due at 1.21 s (held 200 ms), so a pass goes with frames up to 1.29 s ...
    assert simulate(_reread_log("uh"), DynamicLookahead())["p50_ms"] == pytest.approx(790.0)
    # ... but a reading that changed by 1.6 s may have changed by then: it is not committed, and
    # "a" (read from 1.6 s) is due at 1.81 s, on frames up to 1.89 s
    r = simulate(_reread_log("a"), DynamicLookahead())
    assert r["changed"] == 0 and r["p50_ms"] == pytest.approx(1390.0)
    assert simulate(_reread_log("a"), DynamicLookahead(), due=False)["p50_ms"] == pytest.approx(1700.0)


def test_committed_words_are_scored_against_the_clip_each_falls_in():
    log = _log() + _reread_log("a")  # "uh cat" over 0.3-0.8 s, then "a" at 0.3-0.5 s of another lane
    label(log[:1], [(0.0, 0.6), (0.7, 1.0)])  # "uh" in clip 0; "cat" (0.5-0.8 s) nearer clip 1
    label(log[1:], [(0.2, 0.9)], first=2)
    out = []
    simulate(log, NEVER, out=out)  # the log policy's readings: "a", "cat", "a"
    assert [w[0] for w in out] == ["a", "cat", "a"] and [w[8] for w in out] == [0, 1, 2]
    assert errors(out, ["a", "cat", "the"]) == 1
    assert errors(out, ["a", "", "a"]) == 0  # a clip without reference words is not scored
    assert errors(out[:1] + [out[1][:8] + [0]] + out[2:], ["a cat", "", "a"]) == 0
    out[1][6], out[1][8] = True, 0  # "cat", in clip 0, is the rest of the word before it: "acat"
    assert errors(out, ["a cat", "", "a"]) == 2


def test_a_rule_that_never_commits_follows_the_log_policy():
    r = simulate(_log(), NEVER)
    assert r["changed"] == 0 and r["words"] == 2
    assert r["p50_ms"] == pytest.approx(1750.0)  # committed at 2.4 s: 1.9 and 1.6 s after the words


def test_a_word_whose_rest_is_unaccepted_waits():
    log = _log()
    for p in log[0][:4]:
        p["words"][1][6] = True  # "cat" has no space: it is the rest of the word before
        p["words"][1][4] = 0.1  # and unsure, so it waits for the log policy
    assert simulate(log, parse_policy("dynamic"))["changed"] == 0


def test_a_rule_replayed_on_its_own_log_commits_what_it_committed(recognizer, demo_audio):
    log = record(recognizer.lm, demo_audio, log_policy="dynamic")
    assert sum(len(u) for u in log) >= 5
    own = simulate(log, parse_policy("dynamic"))
    assert own["changed"] == 0 and own["words"] == 12  # Beckett's twelve words
    slow = simulate(log, NEVER)
    assert slow["changed"] == 0 and slow["p50_ms"] >= own["p50_ms"]


def test_the_command_replays_rules_on_a_saved_log(tmp_path, capsys):
    import json

    from speechfront.cli import main

    saved = tmp_path / "log.json"
    saved.write_text(json.dumps({"log_policy": "fixed:1500", "log": _log()}))
    assert main(["bench", "lookahead", "--load", str(saved), "--lookahead", "dynamic:hand", "dynamic:200:5000"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("dynamic")]
    # no clip spans in this log: no errors counted
    assert rows == [["dynamic:hand", "2", "-", "1", "640", "760"], ["dynamic:200:5000", "2", "-", "1", "640", "760"]]
    assert main(["bench", "lookahead", "--load", str(saved), "--lookahead", "dynamic:hand", "--no-due"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split() == ["dynamic:hand", "2", "-", "1", "650", "770"]
    spans = [["clip", 0.0, 3.0, "a cat"]]
    saved.write_text(json.dumps({"log_policy": "fixed:1500", "spans": spans, "log": _log()}))
    assert main(["bench", "lookahead", "--load", str(saved), "--lookahead", "dynamic:hand"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split() == ["dynamic:hand", "2", "1", "1", "640", "760"]
    # a start hold needs speech onsets, which the log does not keep; fixed rules are not replayed
    assert main(["bench", "lookahead", "--load", str(saved), "--lookahead", "dynamic:200:1200:200:0.5:500"]) == 2
    assert main(["bench", "lookahead", "--load", str(saved), "--lookahead", "fixed:500"]) == 2


def test_training_rows_are_the_words_the_rule_could_commit_labelled_by_the_final_reading():
    x, y = examples(_log())
    # 1.3 s: "uh" (wrong) and "cat" have held 300 ms, and the hand rule commits both
    assert y.tolist() == [0.0, 1.0] and x.shape == (2, 11)
    x, y = examples(_log(), NEVER)  # a rule that leaves them: 1.6 s read anew, 2.4 s held 800 ms
    assert y.tolist() == [0.0, 1.0, 1.0, 1.0]


def _opening_log():
    """One utterance whose first word reads "uh" until a pass at 1.3 s reads it as "a"."""
    return [[
        {"t": 0.7, "base": 0, "n": 0, "words": [_w("uh", 0.3, 0.5, 0.9, 0.7), _w("cat", 0.5, 0.75, 0.9, 0.7)]},
        {"t": 1.0, "base": 0, "n": 0, "words": [_w("uh", 0.3, 0.5, 0.9, 0.7), _w("cat", 0.5, 0.75, 0.9, 0.7)]},
        {"t": 1.3, "base": 0, "n": 0, "words": [_w("a", 0.3, 0.5, 0.9, 1.3), _w("cat", 0.5, 0.75, 0.9, 1.3)]},
        {"t": 1.6, "base": 0, "n": 0, "words": [_w("a", 0.3, 0.5, 0.9, 1.3), _w("cat", 0.5, 0.75, 0.9, 1.3)]},
        {"t": 2.0, "base": 0, "n": 2, "words": [_w("a", 0.3, 0.5, 0.9, 1.3), _w("cat", 0.5, 0.75, 0.9, 1.3)]},
    ]]


def test_the_rule_chosen_changes_the_fewest_words_within_the_latency_budget():
    from asr.stability import NAMES, StabilityModel
    from asr.lookahead import learned_spec as spec
    from bench.passlog import choose

    n = len(NAMES)
    sure = StabilityModel((0.0,) * n, (1.0,) * n, (0.0,) * n, 5.0, 0.5)  # scores every word 0.993
    log = _opening_log()
    # committing at 1.0 s takes "uh" (P50 / P90 375 / 475 ms); waiting 600 ms after the first
    # word does not: its due pass at 1.2 s does not read "uh", which the pass at 1.3 s reads
    # otherwise; "a" must then hold 200 ms: "a" and "cat" on a due pass with frames up to 1.59 s
    # (the block that ends at 1.6 s; 965 / 1065 ms)
    model, table = choose(log, sure, budget_ms=(1000.0, 1100.0))
    assert table[0]["rule"] == "hand rule"
    chosen = next(r for r in table[1:] if r["rule"] == spec(model))
    assert (chosen["changed"], model.first_ms, model.threshold) == (0, 600.0, 0.9)
    assert (chosen["p50_ms"], chosen["p90_ms"]) == (965.0, 1065.0)
    # passes at the logged times only: both at 1.6 s (975 / 1075 ms)
    slow, table = choose(log, sure, budget_ms=(1000.0, 1100.0), due=False)
    assert slow.first_ms == 600.0 and next(r for r in table if r["rule"] == spec(slow))["p50_ms"] == 975.0
    # with the references, errors rank the rules: where the reference is "uh cat", the quick rule
    label(log, [(0.0, 2.0)])
    right, table = choose(log, sure, budget_ms=(1000.0, 1100.0), refs=["uh cat"])
    assert right.first_ms < 500 and next(r for r in table if r["rule"] == spec(right))["errors"] == 0
    quick, _ = choose(log, sure, budget_ms=(400.0, 500.0))
    assert quick.first_ms < 500 and simulate(log, DynamicLookahead(model=quick))["changed"] == 1
    fastest, _ = choose(log, sure, budget_ms=(1.0, 1.0))  # nothing within budget: the lowest P90
    assert simulate(log, DynamicLookahead(model=fastest))["p90_ms"] == min(r["p90_ms"] for r in table[1:])
    # the maxima tried are those the log policy's lookahead can judge
    assert {r["model"].max_ms for r in table[1:]} == {1200.0, 1500.0}
    _, table = choose(log, sure, longest_ms=2500.0)
    assert {r["model"].max_ms for r in table[1:]} == {1200.0, 1500.0, 2000.0, 2500.0}


def test_a_log_judges_waits_up_to_its_fixed_policys_lookahead():
    from bench.passlog import log_policy_ms

    assert log_policy_ms("fixed:3000") == 3000.0 and log_policy_ms("fixed:1500, fixed:3000") == 1500.0
    assert log_policy_ms("local-agreement-2") == 1200.0  # no fixed wait: only the shortest maximum


def test_training_fits_a_model_and_the_command_writes_its_rule(tmp_path, capsys):
    import json

    from asr.stability import StabilityModel
    from asr.lookahead import learned_spec as spec
    from speechfront.cli import main

    log = _log() * 3
    model, _ = train(log)
    saved = tmp_path / "log.json"
    saved.write_text(json.dumps({"log_policy": "fixed:1500", "log": log}))
    out = tmp_path / "w" / "stability.json"
    assert main(["bench", "lookahead", "--load", str(saved), str(saved), "--train", str(out)]) == 0
    assert "chose dynamic:learned:" in capsys.readouterr().out
    assert spec(StabilityModel.load(out)) == spec(train(log)[0])

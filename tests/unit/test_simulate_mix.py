"""`ringlog simulate --mix`: parsing (a bad mix names its item) and dealing outcomes in proportion."""

from collections import Counter

import pytest

from ringlog.cli import build_parser
from ringlog.simulation.mix import DEFAULT_MIX, OUTCOMES, Dealer, MixError, format_mix, parse_mix


def test_default_mix_names_every_outcome():
    mix = parse_mix(DEFAULT_MIX)
    assert list(mix) == list(OUTCOMES)
    assert sum(mix.values()) == 100
    assert format_mix(mix) == DEFAULT_MIX


def test_a_mix_may_name_some_outcomes_with_spaces_around():
    assert parse_mix(" accept = 70 , decline=30 ") == {"accept": 70, "decline": 30}


@pytest.mark.parametrize("text, names", [
    ("accept=60,ring=10", ["'ring=10'", "unknown outcome 'ring'", "one of: accept, decline"]),
    ("accept=60,decline", ["'decline'", "not name=weight"]),
    ("accept=60,=5", ["'=5'", "not name=weight"]),
    ("accept=lots", ["'accept=lots'", "'lots' is not a whole number"]),
    ("accept=1.5", ["'accept=1.5'", "not a whole number"]),
    ("accept=-1", ["'accept=-1'", "0 or more"]),
    ("accept=1,accept=2", ["'accept=2'", "given twice"]),
    ("accept=1,,decline=1", ["item 2", "empty"]),
    ("accept=0,decline=0", ["every weight is 0"]),
    ("", ["empty"]),
])
def test_a_bad_mix_is_refused_naming_the_item(text, names):
    with pytest.raises(MixError) as refused:
        parse_mix(text)
    for name in names:
        assert name in str(refused.value)


def test_the_command_line_refuses_a_bad_mix_with_the_item(capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["simulate", "--mix", "accept=70,hangup=30"])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "argument --mix: mix item 'hangup=30': unknown outcome 'hangup'" in error


def test_the_command_line_parses_the_mix_and_defaults():
    args = build_parser().parse_args(["simulate", "--mix", "accept=70,decline=30", "--talk", "0.2-1"])
    assert args.mix == {"accept": 70, "decline": 30}
    assert args.talk == (0.2, 1.0)
    defaults = build_parser().parse_args(["simulate"])
    assert defaults.mix == parse_mix(DEFAULT_MIX)
    assert (defaults.users, defaults.rate, defaults.duration, defaults.ring_timeout) == (50, 5.0, 10.0, 3)


@pytest.mark.parametrize("flag, value", [("--users", "0"), ("--rate", "fast"), ("--talk", "3-1"), ("--duration", "-2")])
def test_the_command_line_refuses_bad_numbers(flag, value, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["simulate", flag, value])
    assert f"argument {flag}" in capsys.readouterr().err


def test_the_dealer_deals_exactly_in_proportion():
    dealer = Dealer(parse_mix(DEFAULT_MIX))
    dealt = Counter(dealer.next() for _ in range(200))
    assert dealt == {"accept": 120, "decline": 20, "busy": 10, "timeout": 20, "cancel": 20, "group": 10}


def test_the_dealer_mixes_the_order_and_skips_zero_weights():
    dealer = Dealer({"accept": 2, "decline": 1, "busy": 0, "group": 1})
    first = [dealer.next() for _ in range(8)]
    assert "busy" not in first
    assert Counter(first) == {"accept": 4, "decline": 2, "group": 2}
    assert first[:4].count("accept") == 2  # not all the accepts first


def test_every_outcome_with_a_share_of_one_call_comes_in_a_short_run():
    dealer = Dealer(parse_mix("accept=2,decline=1,busy=1,timeout=1,cancel=1,group=1"))
    assert set(dealer.next() for _ in range(7)) == set(OUTCOMES)

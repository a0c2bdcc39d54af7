"""The ffai_ key format, held by properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flashfusion.core.access import keyformat as keys


def test_generated_keys_round_trip_and_are_unique():
    made = [keys.generate() for _ in range(200)]
    assert len({k.plaintext for k in made}) == 200
    for new in made:
        keys.check_format(new.plaintext)
        assert new.plaintext.startswith("ffai_") and len(new.plaintext) == keys.KEY_LENGTH
        assert new.key_hash == keys.hash_key(new.plaintext) and len(new.key_hash) == 64
        assert new.preview == "..." + new.plaintext[-6:]


BODIES = st.text(alphabet=keys.ALPHABET, min_size=keys.BODY_LENGTH, max_size=keys.BODY_LENGTH)


@settings(max_examples=300)
@given(BODIES, st.data())
def test_checksum_rejects_every_single_character_change(body, data):
    key = keys.PREFIX + body + keys.checksum(body)
    keys.check_format(key)
    position = data.draw(st.integers(min_value=len(keys.PREFIX), max_value=len(key) - 1))
    replacement = data.draw(st.sampled_from(keys.ALPHABET).filter(lambda c: c != key[position]))
    mutated = key[:position] + replacement + key[position + 1 :]
    with pytest.raises(keys.KeyFormatError):
        keys.check_format(mutated)


@given(st.text(max_size=80))
def test_arbitrary_strings_are_refused_unless_well_formed(text):
    try:
        keys.check_format(text)
    except keys.KeyFormatError as exc:
        assert exc.error == "Invalid API key format"
        if not text.startswith("ffai_"):
            assert exc.message == "API keys must start with ffai_"
    else:
        body = text[5 : 5 + keys.BODY_LENGTH]
        assert text[-keys.CHECKSUM_LENGTH :] == keys.checksum(body)


def test_every_body_checksum_fits_the_width():
    assert keys.base62(2**32 - 1, keys.CHECKSUM_LENGTH) != keys.base62(0, keys.CHECKSUM_LENGTH)
    assert 62**keys.CHECKSUM_LENGTH > 2**32

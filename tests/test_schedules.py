import pytest

from probes.schedules import as_schedule, describe, every, never


def test_every_with_offset():
    due = every(3, offset=1)
    assert [s for s in range(10) if due(s)] == [1, 4, 7]
    assert [s for s in range(5) if every(1)(s)] == [0, 1, 2, 3, 4]
    assert not any(never(s) for s in range(5))


@pytest.mark.parametrize("value, expected", [(1, "every step"), (10, "every 10 steps"), (0, "off"),
                                             (None, "off"), (lambda s: s < 3, "custom")])
def test_settings_become_schedules(value, expected):
    assert describe(as_schedule("grad_norm", value)) == expected


@pytest.mark.parametrize("value", [-1, 1.5, "10", True, [1]])
def test_bad_settings_name_setting_and_value(value):
    with pytest.raises(ValueError) as err:
        as_schedule("update_size", value)
    assert f"update_size={value!r}" in str(err.value)


def test_every_refuses_nonsense():
    with pytest.raises(ValueError, match="n=0"):
        every(0)

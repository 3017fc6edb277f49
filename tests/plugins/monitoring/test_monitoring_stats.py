"""Drift statistics on synthetic data whose truth is known (fixed seeds), checked
against scipy called directly here."""

import io

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from mlflow_hokusai.plugins.monitoring import reports, stats

FEATURES = ["a", "b", "c", "colour"]


def frame(rng, n, shift_b=0.0, colours=("red", "green", "blue")):
    return pd.DataFrame({"a": rng.normal(0, 1, n), "b": rng.normal(shift_b, 1, n),
                         "c": rng.exponential(2.0, n), "colour": rng.choice(colours, n)})


def report(reference, current, method="auto", threshold=None, min_samples=30):
    threshold = stats.DEFAULT_THRESHOLD[method] if threshold is None else threshold
    return reports.drift(reference, current, FEATURES, method, threshold, min_samples)


@pytest.mark.parametrize("seed", range(8))
def test_the_same_distribution_drifts_nowhere(seed):
    rng = np.random.default_rng(seed)
    result = report(frame(rng, 2000), frame(rng, 1000), threshold=0.01)
    assert result["overall_drift"] is False
    assert result["features_checked"] == 4 and result["features_drifted"] == 0


def test_the_correction_holds_false_alarms_to_alpha_across_seeds():
    # Holm bounds the chance that any of the 4 features is called drifted to
    # alpha; uncorrected it would be about 1 - 0.95**4 = 18.5% of reports.
    alarms = raw_alarms = 0
    for seed in range(300):
        rng = np.random.default_rng(1000 + seed)
        result = report(frame(rng, 400), frame(rng, 300))
        alarms += result["overall_drift"]
        raw_alarms += any(f["p_value"] < 0.05 for f in result["features"].values())
    assert alarms / 300 <= 0.08
    assert raw_alarms / 300 > 0.12


@pytest.mark.parametrize("seed", range(4))
def test_a_mean_shift_in_one_feature_drifts_exactly_that_one(seed):
    rng = np.random.default_rng(100 + seed)
    result = report(frame(rng, 2000), frame(rng, 1000, shift_b=0.5), threshold=0.01)
    assert result["overall_drift"] is True
    assert result["drifted_features"] == ["b"]
    assert result["features"]["b"]["method"] == "ks"


def test_a_new_category_drifts_the_categorical_feature():
    rng = np.random.default_rng(7)
    current = frame(rng, 1000, colours=("red", "green", "blue", "purple"))
    result = report(frame(rng, 2000), current, threshold=0.01)
    assert result["drifted_features"] == ["colour"]
    assert result["features"]["colour"]["method"] == "chi2"


def test_too_few_samples_are_reported_as_insufficient_not_as_no_drift():
    rng = np.random.default_rng(3)
    result = report(frame(rng, 2000), frame(rng, 10, shift_b=5.0))
    assert result["overall_drift"] is None
    assert result["status"] == "insufficient_data"
    assert result["features_checked"] == 0
    assert sorted(result["insufficient_features"]) == sorted(FEATURES)
    assert all(f["drifted"] is None and f["current_size"] == 10
               for f in result["features"].values())


def test_a_feature_missing_from_the_current_data_is_insufficient():
    rng = np.random.default_rng(4)
    result = report(frame(rng, 500), frame(rng, 500).drop(columns=["c"]))
    assert result["features"]["c"]["status"] == "insufficient_data"
    assert result["features"]["c"]["current_size"] == 0
    assert result["features_checked"] == 3


def test_statistics_match_scipy_directly():
    rng = np.random.default_rng(11)
    reference, current = frame(rng, 800), frame(rng, 600, shift_b=0.2)
    result = report(reference, current)
    for name in ("a", "b", "c"):
        expected = scipy_stats.ks_2samp(reference[name], current[name])
        assert result["features"][name]["statistic"] == pytest.approx(expected.statistic)
        assert result["features"][name]["p_value"] == pytest.approx(expected.pvalue)
    table = pd.crosstab(np.r_[np.zeros(800), np.ones(600)],
                        np.r_[reference["colour"], current["colour"]])
    expected = scipy_stats.chi2_contingency(table.to_numpy(), correction=False)
    assert result["features"]["colour"]["statistic"] == pytest.approx(expected.statistic)
    assert result["features"]["colour"]["p_value"] == pytest.approx(expected.pvalue)
    assert result["features"]["a"]["reference_size"] == 800
    assert result["features"]["a"]["current_size"] == 600


def test_holm_adjusts_like_the_textbook():
    # m = 4: sorted p 0.01, 0.02, 0.03, 0.5 -> 0.04, max(0.04, 0.06), max(0.06, 0.06), 0.5
    assert stats.holm([0.03, 0.01, 0.5, 0.02]) == pytest.approx([0.06, 0.04, 0.5, 0.06])
    assert stats.holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])


def test_the_correction_keeps_a_borderline_feature_from_drifting():
    rng = np.random.default_rng(21)
    reference, current = frame(rng, 800), frame(rng, 600)
    result = report(reference, current)
    # Whatever the raw p-values, each adjusted one is Holm's of the four tested.
    raw = [result["features"][f]["p_value"] for f in FEATURES]
    assert [result["features"][f]["p_value_adjusted"] for f in FEATURES] == \
        pytest.approx(stats.holm(raw))
    assert result["correction"] == "holm"


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(5)
    same = report(frame(rng, 5000), frame(rng, 5000), method="psi")
    assert same["overall_drift"] is False
    assert all(f["statistic"] < 0.05 for f in same["features"].values())
    shifted = report(frame(rng, 5000), frame(rng, 5000, shift_b=1.0,
                                             colours=("red", "red", "purple")), method="psi")
    assert shifted["drifted_features"] == ["b", "colour"]
    assert shifted["features"]["b"]["p_value"] is None  # PSI has none


def test_psi_matches_its_formula():
    table = np.array([[50, 30, 20], [30, 30, 40]])
    p, q = table[0] / 100, table[1] / 100
    assert stats.psi_from_counts(table) == pytest.approx(np.sum((q - p) * np.log(q / p)))


def test_categorical_follows_the_signature_type_over_the_dtype():
    reference = pd.DataFrame({"code": [1, 2, 3] * 20})
    assert not reports.categorical("code", reference, None)
    assert reports.categorical("code", reference, [{"name": "code", "type": "string"}])


def test_unknown_requested_features_are_refused_by_name():
    from mlflow_hokusai.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as refused:
        reports.choose_features(["a", "zz"], pd.DataFrame({"a": [1]}), None)
    assert "zz" in str(refused.value.detail)


def psi_report(reference, current):
    return reports.drift(pd.DataFrame({"x": reference}), pd.DataFrame({"x": current}), ["x"],
                         "psi", stats.DEFAULT_THRESHOLD["psi"], 30)["features"]["x"]


def test_psi_sees_a_binary_flag_move():
    # Two distinct reference values: deciles at 0 and 1 only, which binned
    # every value into one bin and scored any change 0.
    rng = np.random.default_rng(12)
    reference = rng.binomial(1, 0.5, 2000)
    assert psi_report(reference, rng.binomial(1, 0.95, 1000))["drifted"] is True
    same = psi_report(reference, rng.binomial(1, 0.5, 1000))
    assert same["drifted"] is False and same["statistic"] < 0.05


def test_psi_sees_a_constant_change():
    assert psi_report(np.full(500, 3.0), np.full(500, 4.0))["drifted"] is True
    assert psi_report(np.full(500, 3.0), np.full(500, 3.0))["statistic"] == pytest.approx(0)


def test_psi_keeps_every_bin_of_a_feature_with_few_values():
    # Three values, one of them rare: its share going 2% -> 40% is a drift.
    reference = np.r_[np.zeros(490), np.ones(490), np.full(20, 2.0)]
    current = np.r_[np.zeros(300), np.ones(300), np.full(400, 2.0)]
    assert psi_report(reference, current)["drifted"] is True


def test_psi_bins_a_continuous_feature_at_the_reference_deciles():
    rng = np.random.default_rng(13)
    reference, current = rng.normal(0, 1, 4000), rng.normal(0, 1, 3000)
    edges = np.r_[-np.inf, np.quantile(reference, np.linspace(0, 1, 11)[1:-1]), np.inf]
    table = np.array([np.histogram(reference, edges)[0], np.histogram(current, edges)[0]])
    assert table[0].tolist() == [400] * 10
    assert psi_report(reference, current)["statistic"] == pytest.approx(
        stats.psi_from_counts(table))


def test_whole_number_floats_match_integer_categories():
    # A string-typed column with a missing value is read from CSV as float:
    # "1.0" must be the category "1" recorded requests give.
    reference = pd.read_csv(io.StringIO("code,n\n" + "1,0\n2,0\n3,0\n" * 100 + ",0\n"))
    assert reference["code"].dtype == float
    current = pd.DataFrame({"code": [1, 2, 3] * 50})
    result = reports.drift(reference, current, ["code"], "auto", 0.05, 30,
                           [{"name": "code", "type": "string"}])["features"]["code"]
    assert result["method"] == "chi2"
    assert result["statistic"] == pytest.approx(0) and result["drifted"] is False
    table, categories = stats.counts(pd.Series([1.0, 2.5]), pd.Series(["1", "2.5"]))
    assert categories == ["1", "2.5"] and table.tolist() == [[1, 1], [1, 1]]

"""SLO maths: error rate, nearest-rank percentiles, threshold verdicts."""

import pytest

from ansible_collections.svpms.incident_response.plugins.module_utils import slo


class TestErrorRate:
    def test_plain_rate(self):
        assert slo.error_rate(200, 10) == dict(requests=200, errors=10, error_rate_pct=5.0,
                                               no_traffic=False)

    def test_rounded_to_four_places(self):
        assert slo.error_rate(3, 1)['error_rate_pct'] == 33.3333
        assert slo.error_rate_pct(7, 2) == 28.5714

    def test_zero_requests_is_no_traffic_not_division_error(self):
        result = slo.error_rate(0, 0)
        assert result['error_rate_pct'] == 0.0
        assert result['no_traffic'] is True

    def test_none_counts_mean_no_datapoints(self):
        assert slo.error_rate(None, None) == dict(requests=0, errors=0, error_rate_pct=0.0,
                                                  no_traffic=True)
        assert slo.error_rate(50, None)['error_rate_pct'] == 0.0

    def test_errors_without_requests_still_no_traffic(self):
        # Metrics can disagree at window edges; never divide by zero.
        assert slo.error_rate(0, 3)['error_rate_pct'] == 0.0

    def test_float_counts_from_cloudwatch_sums(self):
        assert slo.error_rate(1000.0, 25.0)['error_rate_pct'] == 2.5

    @pytest.mark.parametrize('requests,errors', [(-1, 0), (10, -2), ('10', 1), (True, 0)])
    def test_rejects_bad_counts(self, requests, errors):
        with pytest.raises(ValueError):
            slo.error_rate(requests, errors)


class TestPercentiles:
    SAMPLES = list(range(1, 101))  # 1..100

    def test_nearest_rank_on_1_to_100(self):
        assert slo.percentiles(self.SAMPLES) == dict(p50=50, p95=95, p99=99)

    def test_nearest_rank_small_sample_is_an_observed_value(self):
        samples = [15, 20, 35, 40, 50]
        # rank = ceil(p/100 * 5): p30 -> 2, p40 -> 2, p50 -> 3, p100 -> 5
        assert slo.percentile(samples, 30) == 20
        assert slo.percentile(samples, 40) == 20
        assert slo.percentile(samples, 50) == 35
        assert slo.percentile(samples, 100) == 50
        assert slo.percentile(samples, 1) == 15

    def test_unsorted_input_and_nones(self):
        assert slo.percentile([9, None, 1, 5], 50) == 5

    def test_ten_samples_p95_p99_are_the_max(self):
        assert slo.percentiles(list(range(10, 110, 10))) == dict(p50=50, p95=100, p99=100)

    def test_empty_is_none(self):
        assert slo.percentiles([]) == dict(p50=None, p95=None, p99=None)
        assert slo.percentile(None, 95) is None

    def test_single_sample(self):
        assert slo.percentiles([42.5]) == dict(p50=42.5, p95=42.5, p99=42.5)

    def test_fractional_percentile_key(self):
        assert slo.percentiles(self.SAMPLES, (99.9,)) == {'p99_9': 100}

    @pytest.mark.parametrize('pct', [0, -5, 101, 'p95'])
    def test_rejects_bad_percentile(self, pct):
        with pytest.raises(ValueError):
            slo.percentile([1, 2], pct)

    def test_rejects_non_numeric_samples(self):
        with pytest.raises(ValueError):
            slo.percentile([1, 'x'], 50)


class TestCompare:
    def test_max_met_and_breached(self):
        ok = slo.compare('error_rate_pct', 0.5, 1.0)
        assert ok['status'] == 'ok' and ok['ok'] and not ok['breached']
        assert ok['operator'] == '<=' and ok['margin'] == -0.5
        bad = slo.compare('error_rate_pct', 5.2, 1.0)
        assert bad['status'] == 'breach' and bad['breached'] and not bad['ok']
        assert bad['margin'] == pytest.approx(4.2)

    def test_boundary_inclusive_for_max_exclusive_for_lt(self):
        assert slo.compare('x', 500, 500, 'max')['ok'] is True
        assert slo.compare('x', 500, 500, 'lt')['ok'] is False

    def test_min_and_gt(self):
        assert slo.compare('availability', 99.95, 99.9, 'min')['ok'] is True
        assert slo.compare('availability', 99.0, 99.9, 'min')['breached'] is True
        assert slo.compare('x', 1, 1, 'gt')['breached'] is True

    def test_missing_value_is_unknown_not_ok(self):
        verdict = slo.compare('latency_p95_ms', None, 500)
        assert verdict['status'] == 'unknown'
        assert verdict['ok'] is False and verdict['breached'] is False
        assert verdict['margin'] is None

    def test_bad_comparison_and_threshold(self):
        with pytest.raises(ValueError):
            slo.compare('x', 1, 2, 'around')
        with pytest.raises(ValueError):
            slo.compare('x', 1, None)


class TestEvaluate:
    OBJECTIVES = {'error_rate_pct': 1.0, 'latency_p95_ms': {'max': 500}}

    def test_all_met(self):
        verdict = slo.evaluate({'error_rate_pct': 0.2, 'latency_p95_ms': 310.0}, self.OBJECTIVES)
        assert verdict['status'] == 'ok' and verdict['ok'] is True
        assert verdict['breaches'] == [] and verdict['unknown'] == []
        assert [c['name'] for c in verdict['checks']] == ['error_rate_pct', 'latency_p95_ms']

    def test_breach_wins_over_unknown(self):
        verdict = slo.evaluate({'error_rate_pct': 6.0}, self.OBJECTIVES)
        assert verdict['status'] == 'breach' and verdict['ok'] is False
        assert verdict['breaches'] == ['error_rate_pct']
        assert verdict['unknown'] == ['latency_p95_ms']

    def test_unknown_is_not_ok(self):
        verdict = slo.evaluate({'error_rate_pct': 0.1, 'latency_p95_ms': None}, self.OBJECTIVES)
        assert verdict['status'] == 'unknown' and verdict['ok'] is False

    def test_objective_needs_exactly_one_comparison(self):
        with pytest.raises(ValueError):
            slo.evaluate({'x': 1}, {'x': {'max': 2, 'min': 0}})

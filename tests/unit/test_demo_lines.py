"""What `make demo` prints about a Cluster run."""

from localcloud.demo import cluster_line


def test_a_cluster_run_reads_as_root_causes_and_buckets_apart():
    result = {"status": "clustered", "version": "20171203T020000Z", "tickets": 1068, "issues": 22, "root_causes": 11,
              "clustered": 795, "buckets": {"mixed": 71, "chatter": 63, "gratitude": 54}, "outlier_share": 0.087}
    line = cluster_line(result)
    assert line.startswith("11 root causes from 795 of 1068 tickets (outliers 8.7%)")
    assert "188 tickets in 3 not-issue buckets" in line and "22" not in line


def test_a_run_that_did_not_cluster_shows_its_result():
    assert cluster_line({"status": "skipped", "reason": "no feature shards in the window"}) == \
        '{"status": "skipped", "reason": "no feature shards in the window"}'

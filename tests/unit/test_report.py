import json

from hxgw import report


def sample(failed: int) -> dict:
    checks = [
        {"model": None, "check": "readiness", "status": "pass", "latency_ms": 8.0, "detail": "healthy"},
        {"model": "llm02-phi3", "check": "chat", "status": "fail" if failed else "pass",
         "latency_ms": 41.5, "detail": "answered 'WRONG-ANSWER', expected 'HX-OK'"},
    ]  # fmt: skip
    return {
        "gateway": "gw-1",
        "url": "http://198.18.0.39:4000",
        "litellm_version": "1.108.7",
        "duration_s": 1.25,
        "summary": {"passed": 2 - failed, "failed": failed, "degraded": 0},
        "checks": checks,
    }


def test_render_names_gateway_totals_and_each_check():
    lines = report.render(sample(failed=1))
    assert lines[0].startswith("== gw-1 at http://198.18.0.39:4000 (litellm 1.108.7): 1 passed, 1 failed")
    assert any("llm02-phi3" in line and "fail" in line and "WRONG-ANSWER" in line for line in lines)
    assert any("readiness" in line and line.split()[3] == "8" for line in lines[2:3])


def test_main_exit_status_follows_failures(tmp_path, capsys):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(sample(failed=0)))
    bad.write_text(json.dumps(sample(failed=1)))
    assert report.main([str(good)]) == 0
    assert report.main([str(good), str(bad)]) == 1
    assert "report: " + str(bad) in capsys.readouterr().out


def test_main_without_reports_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(report, "REPORTS", tmp_path)
    assert report.main([]) == 1
    assert "make demo" in capsys.readouterr().err

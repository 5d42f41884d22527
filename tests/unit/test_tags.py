from hxgw.tags import missing_tags, normalize_tag


def test_untagged_name_means_latest():
    assert normalize_tag("phi3") == "phi3:latest"
    assert normalize_tag("phi3:latest") == "phi3:latest"
    assert normalize_tag("llama3.2:3b") == "llama3.2:3b"


def test_registry_port_is_not_a_tag():
    assert normalize_tag("registry.local:5000/team/model") == "registry.local:5000/team/model:latest"


def test_missing_tags_keeps_order_and_matches_latest():
    held = ["phi3:latest", "gemma2:2b", "mxbai-embed-large:latest"]
    assert missing_tags(["phi3", "cogito:32b", "mxbai-embed-large", "gemma2:7b"], held) == [
        "cogito:32b",
        "gemma2:7b",
    ]

import attest


def test_public_api_is_complete_and_sorted() -> None:
    assert attest.__all__ == sorted(attest.__all__)
    for name in attest.__all__:
        assert getattr(attest, name) is not None


def test_run_scan_is_the_scan_function() -> None:
    from attest.scan import run_scan
    assert attest.run_scan is run_scan

"""`single_threaded_blas`: BLAS pinned to one thread inside, restored after."""

from __future__ import annotations

from threadpoolctl import threadpool_info, threadpool_limits

from recsys.models.base import single_threaded_blas


def _blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_pins_blas_and_restores_it_every_time() -> None:
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        assert before and all(n == 2 for n in before)
        for _ in range(2):  # the controller is found once and reused
            with single_threaded_blas():
                assert _blas_threads() == [1] * len(before)
            assert _blas_threads() == before

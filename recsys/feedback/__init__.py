"""The closed loop: exposures written off the request path, clicks, and order touches.

- `writer.ExposureWriter`: queues exposures (and held-out contacts) and writes them in
  batches from a background thread, so a request never waits for the store's write;
- `events`: validation and recording of clicks and of the exposure / voucher an order names.
"""

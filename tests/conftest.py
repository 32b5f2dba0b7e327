

def pytest_addoption(parser):
    parser.addoption("--nats-url", default=None, help="use this nats-server instead of starting one")

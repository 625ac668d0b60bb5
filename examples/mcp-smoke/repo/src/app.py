"""The demo project's entry point."""


def main() -> None:
    # TODO: read the configuration file
    print("hello")  # TODO: use logging


if __name__ == "__main__":
    main()

"""Apache Airflow provider for the useapi.net PixVerse speech API."""

__version__ = "0.1.0"

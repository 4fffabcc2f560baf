from django.apps import AppConfig


class InferenceWorkersConfig(AppConfig):
    name = "inference_workers"
    verbose_name = "Models and generation"

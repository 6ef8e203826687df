from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "apps.routing"
    label = "routing"
    verbose_name = "Model routing"

    def ready(self) -> None:
        # A "local" model on a public address is said loudly, in every process's log.
        from apps.routing.locality import check_at_start

        check_at_start()

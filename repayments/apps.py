from django.apps import AppConfig


class RepaymentsConfig(AppConfig):
    name = "repayments"
    verbose_name = "Repayments"

    def ready(self) -> None:
        # A worker's log lines carry the django-q2 task's id and name (baitiao/logs.py).
        from django.core.signals import request_finished
        from django_q.signals import post_execute_in_worker, pre_execute

        from baitiao.logs import bind_task_context, clear_request_context, clear_task_context

        pre_execute.connect(bind_task_context, dispatch_uid="baitiao.logs.bind_task_context")
        post_execute_in_worker.connect(clear_task_context, dispatch_uid="baitiao.logs.clear_task_context")
        # A request's id stays on its thread's log lines until the response is closed.
        request_finished.connect(clear_request_context, dispatch_uid="baitiao.logs.clear_request_context")
        # The audit event page links to customers, bills, incidents, relief batches, import jobs.
        from repayments.audit_links import register

        register()

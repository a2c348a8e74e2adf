"""The back office imports through the same resources: preview with row errors, confirm, audit."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import AuditEvent
from repayments.models import Bill, Customer
from tests.repayments.imports.conftest import BILLS_HEADER, CUSTOMERS_CSV


def _upload(client, url: str, name: str, content: bytes):
    return client.post(url, {"format": "0", "import_file": SimpleUploadedFile(name, content, "text/csv")})


def test_the_admin_preview_shows_row_errors_and_offers_no_confirmation(client, admin_user, three_customers):
    client.force_login(admin_user)
    url = reverse("admin:repayments_bill_import")
    content = (BILLS_HEADER + "B1,C0001,2024-03,2024-03-01,2024-02-01,100,100,10,0,open\n").encode("gbk")
    response = _upload(client, url, "bills.csv", content)
    html = response.content.decode()
    assert response.status_code == 200 and "is before the statement date" in html
    assert "process_import" not in html and Bill.objects.count() == 0


def test_the_admin_imports_a_gbk_file_after_the_preview_and_audits_it(client, admin_user, empty_domain):
    client.force_login(admin_user)
    preview = _upload(client, reverse("admin:repayments_customer_import"), "customers.csv", CUSTOMERS_CSV.encode("gbk"))
    form = preview.context["confirm_form"]
    assert form is not None and Customer.objects.count() == 0  # the preview was a dry run
    response = client.post(reverse("admin:repayments_customer_process_import"), form.initial)
    assert response.status_code == 302
    assert Customer.objects.get(customer_no="C0002").name == "李四"
    event = AuditEvent.objects.get(action="data.import")
    assert event.actor == admin_user and event.after["created"] == 3


def test_the_admin_export_is_masked_and_formula_safe(client, admin_user, run_import):
    run_import("customers", 'customer_no,name,phone\nC0001,"=cmd|x",13800138000\n')
    client.force_login(admin_user)
    fields = {f"customerresource_{name}": "on" for name in ("customer_no", "name", "phone")}
    response = client.post(reverse("admin:repayments_customer_export"), {"format": "0", "resource": "0", **fields})
    body = b"".join(response.streaming_content) if response.streaming else response.content
    text = body.decode("utf-8-sig")
    assert "138****8000" in text and "13800138000" not in text
    assert "'=*" in text  # the masked name still starts with "=" and is neutralised
    assert AuditEvent.objects.filter(action="data.export").exists()


def test_staff_without_the_import_permission_cannot_open_the_admin_import(client, agent):
    agent.is_staff = True
    agent.save(update_fields=["is_staff"])
    client.force_login(agent)
    response = client.get(reverse("admin:repayments_customer_import"))
    assert response.status_code == 403


def test_the_admin_preview_never_shows_a_full_card_number(client, admin_user, three_customers):
    client.force_login(admin_user)
    content = "客户编号,卡号,预留手机号\nC0001,6216261000000000018,13552535506\n".encode("gbk")
    html = _upload(client, reverse("admin:repayments_cardbinding_import"), "cards.csv", content).content.decode()
    assert "cannot be bound from a file" in html and "6216261000000000018" not in html


def test_the_admin_refuses_a_file_too_big_to_parse_while_you_wait_and_points_to_the_queue(
    client, admin_user, empty_domain, settings
):
    settings.IMPORT_LIMITS = {**settings.IMPORT_LIMITS, "inline_max_bytes": 100}
    client.force_login(admin_user)
    content = CUSTOMERS_CSV.encode()
    html = _upload(client, reverse("admin:repayments_customer_import"), "customers.csv", content).content.decode()
    assert "up to 100 bytes" in html and f"this one has {len(content):,}" in html and "console" in html
    assert Customer.objects.count() == 0


def test_the_admin_shows_why_the_reader_refused_a_file(client, admin_user, empty_domain):
    client.force_login(admin_user)
    content = b"customer_no,shoe_size\nC0001,42\n"
    html = _upload(client, reverse("admin:repayments_customer_import"), "customers.csv", content).content.decode()
    assert "row 1, column shoe_size" in html and "Unknown column" in html

"""Keyboard-only use (issue #16): an agent works the worklist and a customer with Tab and Enter, no mouse.

Every step checks what a keyboard user relies on: the skip link comes first and
is shown when focused, each focused control has a visible outline, and Tab moves
forward through the page in document order.
"""

from __future__ import annotations

import time

import pytest

from repayments.models import Bill, CustomerNote
from tests.e2e.test_console_flows import LANGUAGES, _bad_binding_customer

pytestmark = pytest.mark.django_db(transaction=True)

FOCUSED = """() => {
  const element = document.activeElement;
  if (!element || element === document.body) return null;
  const style = getComputedStyle(element), box = element.getBoundingClientRect();
  element.dataset.kbdSeen = String(window.__kbdStep = (window.__kbdStep || 0) + 1);
  const previous = document.querySelector("[data-kbd-last]");
  const forward = !previous || !!(previous.compareDocumentPosition(element) & Node.DOCUMENT_POSITION_FOLLOWING);
  if (previous) previous.removeAttribute("data-kbd-last");
  element.setAttribute("data-kbd-last", "");
  return {
    tag: element.tagName.toLowerCase(),
    text: (element.innerText || element.value || element.getAttribute("aria-label") || "").trim(),
    testid: element.dataset.testid || "",
    classes: element.className,
    outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 1,
    visible: box.width > 0 && box.height > 0 && box.left >= 0 && box.top >= 0,
    forward: forward,
  };
}"""


def _tab_to(page, wanted, *, limit: int = 120) -> dict:
    """Press Tab until ``wanted(focused)``; every stop has a visible outline and moves forward in the page."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        assert focused is not None, "Tab left the page's controls"
        assert focused["outline"], f"no visible focus on {focused}"
        assert focused["forward"], f"Tab went backwards to {focused}"
        if wanted(focused):
            return focused
    raise AssertionError(f"not reached with {limit} presses of Tab")


def _wait_for(predicate, *, timeout: float = 20.0, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_agent_claims_a_bill_and_writes_a_note_with_the_keyboard_only(language, empty_domain, login, agent):
    customer, bill = _bad_binding_customer()
    page = login(agent, language)
    page.goto(page.url.rstrip("/") + "/console/?queue=failures")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")

    # The first Tab shows the skip link; Enter jumps past the top bar into the page.
    skip = _tab_to(page, lambda focused: True, limit=1)
    assert "skip" in skip["classes"] and skip["visible"], skip
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"

    # Tab through the filters to the bill's "Assign to me" and press Enter.
    claim = _tab_to(page, lambda focused: focused["testid"] == f"claim-{bill.bill_no}")
    assert claim["tag"] == "button"
    page.keyboard.press("Enter")
    _wait_for(
        lambda: Bill.objects.filter(pk=bill.pk, assigned_to=agent).exists(), what="the bill to be assigned to the agent"
    )
    page.wait_for_selector(f"[data-testid=release-{bill.bill_no}]")

    # On to the customer, still by keyboard: the skip link, then the customer's link in the bill's row.
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    _tab_to(page, lambda focused: True, limit=1)
    page.keyboard.press("Enter")
    _tab_to(page, lambda focused: focused["tag"] == "a" and focused["text"] == customer.customer_no)
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=customer-audit]")

    # The note form: its field has a label, Enter on its button adds the note.
    _tab_to(page, lambda focused: focused["tag"] == "textarea")
    page.keyboard.type("Called the customer; new card on the way.")
    _tab_to(page, lambda focused: focused["tag"] == "button", limit=1)
    page.keyboard.press("Enter")
    _wait_for(lambda: CustomerNote.objects.filter(customer=customer).exists(), what="the note to be saved")
    page.wait_for_selector("text=Called the customer; new card on the way.")

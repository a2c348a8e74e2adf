"""Write services of the repayment domain (HackSoft style: plain functions)."""

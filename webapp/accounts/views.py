"""The account page: who you are, your API token, a link to change the password."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from rest_framework.authtoken.models import Token


@login_required
@require_http_methods(["GET", "POST"])
def account_page(request):
    if request.method == "POST":
        Token.objects.filter(user=request.user).delete()
        Token.objects.create(user=request.user)
        messages.success(request, "A new API token was created; the old one no longer works.")
        return redirect("account")
    token = Token.objects.filter(user=request.user).first()
    return render(request, "accounts/account.html", {"token": token})

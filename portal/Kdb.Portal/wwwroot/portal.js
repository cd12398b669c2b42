// Kdb.Cloud portal: the few live parts of server-rendered pages. No framework, no external code.
(function () {
    'use strict';

    const settled = new Set(['ready', 'failed', 'deleted']);

    function setBadge(badge, status) {
        badge.textContent = status;
        badge.dataset.status = status;
        badge.className = 'badge badge-' + status;
    }

    function showProgress(id, status, reason) {
        document.querySelectorAll('[data-progress-for="' + CSS.escape(id) + '"]').forEach(function (el) {
            if (status === 'ready') {
                el.textContent = 'Your database is ready.';
            } else if (status === 'failed') {
                el.textContent = 'Creating the database failed' + (reason ? ': ' + reason : '.');
            } else {
                el.textContent = 'Setting up your database… (' + status + ')';
            }
        });
    }

    // Polls one database's status until it settles: every second at first, then less often.
    function poll(badge) {
        const id = badge.dataset.pollDatabase;
        let attempts = 0;
        async function tick() {
            attempts++;
            try {
                const response = await fetch('/portal/api/databases/' + encodeURIComponent(id) + '/status', {
                    headers: { 'Accept': 'application/json' },
                    credentials: 'same-origin',
                    cache: 'no-store'
                });
                if (response.status === 401 || response.status === 404) {
                    badge.title = response.status === 401 ? 'Your session has expired: reload to log in again.' : 'Not found.';
                    return;
                }
                if (response.ok) {
                    const body = await response.json();
                    setBadge(badge, body.status);
                    showProgress(id, body.status, body.statusReason);
                    if (settled.has(body.status)) {
                        return;
                    }
                }
            } catch (e) {
                // Network hiccup: keep trying.
            }
            setTimeout(tick, attempts < 60 ? 1000 : 5000);
        }
        setTimeout(tick, 1000);
    }

    async function copy(button) {
        const target = document.getElementById(button.dataset.copyTarget);
        if (!target) {
            return;
        }
        const text = target.value !== undefined ? target.value : target.textContent;
        let ok = false;
        try {
            await navigator.clipboard.writeText(text);
            ok = true;
        } catch (e) {
            // Not a secure context or no permission: fall back to selecting and copying.
            target.focus();
            if (target.select) {
                target.select();
            }
            ok = document.execCommand && document.execCommand('copy');
        }
        const label = button.textContent;
        button.textContent = ok ? 'Copied' : 'Press Ctrl+C';
        button.dataset.copied = ok ? 'true' : 'false';
        setTimeout(function () { button.textContent = label; }, 2000);
    }

    function start() {
        document.querySelectorAll('[data-poll-database]').forEach(poll);
        document.addEventListener('click', function (event) {
            const button = event.target.closest('[data-copy-target]');
            if (button) {
                event.preventDefault();
                copy(button);
            }
        });
    }

    if (document.readyState === 'loading') {
        document.addEventListener('DOMContentLoaded', start);
    } else {
        start();
    }
})();

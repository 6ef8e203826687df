"""The Content-Security-Policy header (django-csp 4): scripts and styles from our own static
files only, no inline script or event handler anywhere, nothing framed, no plugins, and
images only from our own origin (an answer never makes the browser fetch from elsewhere).
apps/config/settings.py takes it as it is; nothing here is read from the environment."""

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

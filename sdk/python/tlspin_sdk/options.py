"""Option checking: what the host's user wrote after --verifier NAME:."""


class OptionError(Exception):
    """A bad option. The host shows it to the user as a usage error (exit 2).

    The message names the option and quotes the value, as tlspin's Go
    verifiers do: option pin="abc": want 64 hex digits.
    """

    def __init__(self, option, value, problem):
        self.option, self.value, self.problem = option, value, problem
        if value:
            super().__init__('option %s="%s": %s' % (option, value, problem))
        else:
            super().__init__('option "%s": %s' % (option, problem))


def check_options(description, options):
    """Raises OptionError for an option description (a pb.DescribeResponse)
    does not declare, a repeated value of an option that is not repeatable,
    or a required option that is missing; serve() does it before configure.
    """
    known = {o.name: o for o in description.options}
    takes = ", ".join(sorted(known))
    for name in sorted(options):
        if name not in known:
            raise OptionError(name, "", "%s does not take this option (it takes: %s)" % (description.name, takes))
        if not known[name].repeated and len(options[name]) > 1:
            raise OptionError(name, ",".join(options[name]), "given more than once")
    for o in description.options:
        if o.required and not options.get(o.name):
            raise OptionError(o.name, "", "%s requires it" % description.name)


class Options:
    """The options given to configure, already checked against describe().

    Values are strings; an option may have several values (pin=a,pin=b).
    """

    def __init__(self, options):
        self._options = {k: list(v) for k, v in options.items()}

    def __contains__(self, name):
        return bool(self._options.get(name))

    def strings(self, name):
        """Every value of name, in order; [] when it is not given."""
        return list(self._options.get(name, []))

    def string(self, name, default=None):
        """The value of name, or default when it is not given."""
        values = self._options.get(name)
        return values[0] if values else default

    def integer(self, name, default=None):
        """name as a whole number >= 0, or default when it is not given."""
        s = self.string(name)
        if s is None:
            return default
        if not (s.isascii() and s.isdigit()):
            raise OptionError(name, s, "want a whole number >= 0")
        return int(s)

    def check(self, name, parse):
        """Runs parse on every value of name and returns the results.

        A ValueError from parse becomes an OptionError naming the option
        and quoting the value, with the ValueError's message.
        """
        out = []
        for s in self.strings(name):
            try:
                out.append(parse(s))
            except ValueError as e:
                raise OptionError(name, s, str(e)) from None
        return out

"""One copy of the steps many tests repeat, so a change to the API is one change here:
`problems` checks an error answer, `accounts` makes an account, its token and its links."""

from services.step_runner.pipeline.sql_statements import split_statements


def test_split_respects_strings_comments_and_dollar_quotes() -> None:
    sql = """
    SELECT ';' AS a, "semi;colon" FROM t; -- trailing; comment
    /* block ; /* nested ; */ still */ SELECT $tag$ ; $tag$, E'it\\'s;', $$;$$;
    ;  -- empty statement
    """
    assert split_statements(sql) == [
        "SELECT ';' AS a, \"semi;colon\" FROM t",
        "SELECT $tag$ ; $tag$, E'it\\'s;', $$;$$",
    ]


def test_comment_only_text_has_no_statements() -> None:
    assert split_statements("-- nothing\n/* at all */") == []

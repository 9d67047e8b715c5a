from residuals.cli import main

main()
